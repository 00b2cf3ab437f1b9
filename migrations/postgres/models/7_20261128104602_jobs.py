from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        CREATE TABLE IF NOT EXISTS "jobs" (
    "id" UUID NOT NULL PRIMARY KEY,
    "kind" VARCHAR(64) NOT NULL,
    "status" VARCHAR(16) NOT NULL,
    "progress" JSONB NOT NULL,
    "worker" VARCHAR(200),
    "attempts" INT NOT NULL,
    "cancel_requested" BOOL NOT NULL,
    "error" TEXT,
    "created_at" TIMESTAMPTZ NOT NULL,
    "started_at" TIMESTAMPTZ,
    "finished_at" TIMESTAMPTZ,
    "heartbeat_at" TIMESTAMPTZ,
    "user_id" UUID NOT NULL REFERENCES "users" ("id") ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS "idx_jobs_user_id_260af5" ON "jobs" ("user_id", "created_at");
CREATE INDEX IF NOT EXISTS "idx_jobs_status_4f4765" ON "jobs" ("status", "created_at");
CREATE INDEX IF NOT EXISTS "idx_jobs_user_id_843017" ON "jobs" ("user_id", "status");
COMMENT ON COLUMN "jobs"."status" IS 'QUEUED: queued\nRUNNING: running\nSUCCEEDED: succeeded\nFAILED: failed\nCANCELLED: cancelled';
COMMENT ON TABLE "jobs" IS 'One piece of long work. Its id is the id of the row it works on (an optimisation''s),';
        CREATE TABLE IF NOT EXISTS "job_tasks" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "kind" VARCHAR(64) NOT NULL,
    "key" VARCHAR(64) NOT NULL,
    "done" BOOL NOT NULL,
    "error" TEXT,
    "created_at" TIMESTAMPTZ NOT NULL,
    "finished_at" TIMESTAMPTZ,
    "job_id" UUID NOT NULL REFERENCES "jobs" ("id") ON DELETE CASCADE,
    CONSTRAINT "uid_job_tasks_job_id_5dce93" UNIQUE ("job_id", "key")
);
COMMENT ON TABLE "job_tasks" IS 'One task of a job''s fan-out (`JobControl.run_tasks`), keyed by its job and payload: a';"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        DROP TABLE IF EXISTS "jobs";
        DROP TABLE IF EXISTS "job_tasks";"""


MODELS_STATE = (
    "eJztXetz4jgS/1dUfJlMVTY3ec5s7uqqgJAsswTmCMy+2PIKW4AntsRKcjLs3vzv15JtHn"
    "4QTHifvyQgqSXxa7nV6m61/y64zCKOOLnBEgsiC9fo7wLFLoEP0apjVMDD4aRCFUjcdXRb"
    "y2+kC3FXSI5N1VkPO4JAkUWEye2htBlVrYvIE4S/EcjF/JFIpKiPke0OGZfEQoyaBGFqIU"
    "6gnYW6I9TF5qMkQgpdzqAn1xZY9SdO1JgWM2FQm/ZX332HdmhrQKANF8ixnwiyKQpAKUHZ"
    "MXRIkMncISdC9+ewLhoSjgJQjpFgQCgkTC8sE4iSJ8I7lBNsCSQHxEVHMOkn2yTiH2Gjk+"
    "EICTwS6HkwQtjvWE2QMglfOXvWw8DE3moQPGr/6RFDsj6BDjlA8dtvBQWFqtRc/f13+GRT"
    "i3wlYlJt2JZqYcJcAB8DS7/d8NHo2cSxZhaF31SXG3I01GXtdvXmVrdUnOgaJnM8l05aD0"
    "dywOi4uefZ1omiUXV9QglXw06tFuo5TrCwwiL/p0GB5B4Z/wZrUmCRHvYcteYK/+p51FS8"
    "Q3ok9efi38HUppoZRr3RMh4qLcMoxJaomkJkWQVFJqwJWN42lQrBv7/5/U4A0aUFNUD5h2"
    "Lz6PzqrYaACdnnulLDVfimCYHPPqnmxgRl/T+Gc3mAeTLOYfsI0jDRZTAOCyYgT57jEL4Q"
    "oDVAWnDxV8MhtC8H8PXs3bs5GH8uNjXM0ErjzEDw+BKpHlSd+XUK7wm+YuR2mZMF4QnFUh"
    "gHq3Q3Ib66WADhq4tUgFXVLL4gP0mPZ1zEM0SHh/Lp1QIon16loqyq4igbf8HukxXlMdHm"
    "5EWh3SqvSwavezXDBgsAelTGca5SmQzzDE0EZtsv3Tex3FeT+O7s9OL9xYfzq4sP0ERPdF"
    "zyfg7w1XorKoMl5gmIgmZF1BpNEcMhUQRSK6A6CT/sn7SYA16rel95aBXvP6nuXSH+dDRS"
    "xVZF1Zzp0lGk9CgqScadoJ+qrR+Q+op+bdQrUfVk3K71a0HNCXuSGZQ9G9iaxiQsDotmeE"
    "togpo4n7MBSc7XXearkIzDCaE7gsNSnMElu58qD6OUhyQSvz87Oz9/f/bu/OrD5cX795cf"
    "3o1lY7xqnpAsVe+UnJxhb1xw+gdZgxP1L86Fjw+NesppLEoYfdhsU6L/6qPq2tSAyeGs69"
    "kOHInFiRp2G+czBdTMgxfqAEf3xZ+j6kG51ihFnyjVQSnCnKlDdEYBOEu5Ajm4c0+LsnU0"
    "qDMKZPSeCMZgO5krF6esKIuaRqZIVmkf2d3N7gVziLI49R4TrSGhCWsW2lvYUOw+/ZGMNM"
    "BVmAemZtKxJjBktoNu9hPSSelkTXL8PDbRTS8o+O3wi4n0j4LFh3LxplLQCCtD5zPmljED"
    "taphZyxSMm47WzUl6xiVJOlUVAooG5S0GPxpEkcbU9N5M2VP3VsNL8Yhjbh75kZwdTHFfT"
    "1L1Z0iTgAh3RAfYvSiMd7ohi1fNMiP7dusp63ZwVDX6C/H7iL2RDgKjdMnvlHdUIOcqLmc"
    "gFzUat3R27gpfpUdJ5i3I+bsTFbrVFU1USgnKKjBKnydtXrnD+zpRmpVkXQIoJiPkpENKS"
    "LYjg8F+ymZEzX5QF0c6y6gWpaq9WLzl7FyOVZgao36XSlBvSz90qoUI+pl+Ghn0zVmqTbr"
    "jtkPZSPL3hjjRpwV4ca3oGYy5WLdRwa8qJrMrr8FtJO4MpJhG70LIXyQ6l9/lLSZxhvN3V"
    "LHbDGE394mi22t6Vi+vJ2lemeP0UwVLC/piRcb+b/TX3sJbXP3b+7+3YVddQPu3+mZxWBu"
    "ka8pimGEbIPOsy0s31bl59Z869iMAhM2j5rMZoFn3O6DfugYQ87cYcLGmQ5+AulBLPdNs2"
    "Cyk5mwzWXhQJwyZ8ASDIhtxHEpX6GeG1MdI+6USCcbFEamJyRzM4qkQqtZqd8Yt41arfFT"
    "tX6ndm5CQddmjsOegT8del8p1o1m5XOl+VBt1K+RSzA1uAqTE9AH1DfuK/VW+x5qmEuo9N"
    "wOLTUrxR8b7dY16oL68sg82aGgUNY+6SGEiZ2h7ludvlrN4l3lGmHetQG9PunQu2b15hr1"
    "uW11aLn90GpA31O/LuNWdX62wE51fpa6UamqmIs8UOyWWyMh9QYXh8VxT2ZdGzfN4i2wUN"
    "N26OdiraqM+sCaJ+zYyuMB/CmWW9XPin2g2z0RxdHyD1BwoxhqDqAI2lSazUbzGhHOGV+G"
    "g6sP0Ql+APxOWMkCwEjgZrrDLpn6VV673TSdbsw9N8QqwEwSnokPs1S513T1bCG8x7irxJ"
    "gBQHPbzMafZPKcUStnlCdg48wcDBeh2lzsx7s1wb7qWLhAx8kA6RTF5uA83RM48yCMdKgP"
    "OAhjaC3J9VnKnOu7wvWEmMRg9nnoTR56szv+rVeE3sQMc+qw57B+Unht0MHtjy/H04Rerb"
    "txpzXW39vjYTyyJkF5WhFinyeK1YGs1m+ZwrsyOls/sm4hwb2qio/nOVS/sO6CsUkNStDQ"
    "JiZRMUQOo330zPjjCapKgWwL2fr2rPoE1eqTuhZrS91IIDiIHWE6c6P3jXh7HDUOrWWQDh"
    "UMYQS/VNH34PRjoR5nLhAKJLzuFwLnUXWdF4+/DbBAWCIXZLQOlwLaBUOf5vqKF3QQ60a5"
    "73e7vt9HO+nuTLrvN2x/EL6Ydd/k20ODOjT1iJVxDRf+0660lW3cp+7QZrte1y4R7lGqPS"
    "IP7XK5UrlRjYRnmoRYqt1tsVpTRT1sO+p7uVgvV2q6yFSYOE4wl61b1oecqacqm51wiiY3"
    "Dq7cOKh2w6TjQrrwmlAc3n3vtUSuYCmJO0zyIqVaCqdJcstrzFSopZrBCfw0IUnC1ltizC"
    "GYptgLE8ij0c3MzxuxDpTHJRuObm40ajPSo1SNBj6070sVkOh6bUMj2z8Qx/Ef+2oXjUIZ"
    "ExyCxNh07EluGE8XLPtpIl3EMK6TJizF9VnK/G7+7tjB41zu2dQWg6XYHCHN+bzLfB4QeC"
    "a7II2XYHSUNuf0LnM6d23lrq2DcG1JLB5f6Z75yLot6OWAkF63W0bDleyaCZGc654xxlxb"
    "zEejmiv3iPZ4vBHQlH7HPImO/oARy4xKzpwT7lG/3z/eHqNHMvLTryqHyJcgt+kQjxyGrW"
    "uEE500Kx+lQ3WXcoAl4piiI8aVu4YTwMR+IvAf4Z4kXJP79ipk2cR6q1qpRKw6rA1ayWfb"
    "JOl5WL/4HjGYTSwLa35tfZPX1nMHyxodLGp5Z8HWb55DuwC0VmKiz7nWSSs5zWdukcwtkr"
    "lFcvcFyuFaJHNb1f+HBUMdI7IZMCYUuf1ivv0iOFC80nwRBOrtJ6AvWi8mq2mtKfEyHs6T"
    "g3MTjuqpUbzpB/fxxfCEcOIdT1aTJ6DZmSDE7Ok58qwcr0wKsW+BidnBL+iQw4eHIOBQCD"
    "/csN2s+PGGHicd+qnYbFWLtWs0xFza2IkaAbcWbPhkW9li26ZpdpktSxo4Vp/tQu9mWRAe"
    "ExwgvKcLRQ+ezokePE2IHrRVHokhjEsM0JOyyPcE0tzckV3OA75KA1si+1KcMsd/CfyVrc"
    "5wYfMB1TyzkW+aMEc/O/qwJap9H6Zk6NdQCQITshLUnluH4XRFM62PCEt6qpN1bQTvTtYV"
    "4TyHKTeNdqlWQZ+alXJV5ciaNfjoylnrdrNSrEVfGsYeCRWGevNlHPdU52KEKo8jj72UhQ"
    "49afgwZcA1SpYDGwWWeXIpZGN0ObQxT5cACRokdBQSHu4EiTBHEieTLymE92dnXIUQTr/G"
    "k355bc49ni1dXlPjHczlNU6G2OYGV9e0s8iZGF0uZ+J7oyR8yIkcx/gtuubjlLux8g/q2q"
    "bdp/rdfOoSm82JSq2aSTCl0e8Gqw5KSOXREulC63CjJcY+vWzOrwjZK7xg+6Ocvejzym9X"
    "5Lcrdic+4cXbFUliYAWwJr79Zi+FwIsQR6TgDMwwB1Rv12rbDgQJc47NCQGZSku2QPDHdE"
    "q0xW5vKBcy8S9WhL28EUi5GoL7EmEG7H8ilZF/hMwBpn1NQWwVEoJgP/OzZFHy1c8AH727"
    "seIxOpR6bpfwY01NmRzAWIhY6qIGRgEE/uUNxSqByFeTDKW+yKH4J4mQKEgXnX5vY/qp88"
    "fL729s9f5GwITFgZ0QHNJLx1d2Os9fCLNtr1j+ToJdPGvbanTPzPqSsAhZ/kQs8UTAaXiQ"
    "dAcnPRRoQnEQgEdCrRaKBTqfEwt0Ho8Fyt9Ms1viJn8Fyp4wKrfBpout3Aa7NhvsrvF6LV"
    "bDLZu4dhTjV9m4tnzXSRtwE+xaoWE33ZilbKPrv7aUXzTa6kUj4mI7U8z/mGA1ev52LWWz"
    "+YIvF0kZAa3S8wVfxpJGDLEQzwwe4gEWgyw4xwgP8Fx1dnm5EOKXcxC/jCJuCwO2pl4vDv"
    "bcVB3TZHm6jgzpOnJ1PH21H5Y6HtMb0zWaqaw5sPMIkmTcyJJ97sbvZQ/XQJoKmXS4sckr"
    "YTpknTua1+L1+QwPFZydeJHZ3iC3zsNXkXDbHBQSjl9BzfG8AxietNmZE1juPX+l9zz1Tc"
    "PpR4H0Vw3nh4CUQ4B6qDIgHDQ/QHTXco0dRpQk6QXk6e6RKZLNu0T23EuVQe9e/Wb27X+r"
    "80KE"
)
