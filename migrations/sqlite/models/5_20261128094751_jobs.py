from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        CREATE TABLE IF NOT EXISTS "jobs" (
    "id" CHAR(36) NOT NULL PRIMARY KEY,
    "kind" VARCHAR(64) NOT NULL,
    "status" VARCHAR(16) NOT NULL /* QUEUED: queued\nRUNNING: running\nSUCCEEDED: succeeded\nFAILED: failed\nCANCELLED: cancelled */,
    "progress" JSON NOT NULL,
    "worker" VARCHAR(200),
    "attempts" INT NOT NULL,
    "cancel_requested" INT NOT NULL,
    "error" TEXT,
    "created_at" TIMESTAMP NOT NULL,
    "started_at" TIMESTAMP,
    "finished_at" TIMESTAMP,
    "heartbeat_at" TIMESTAMP,
    "user_id" CHAR(36) NOT NULL REFERENCES "users" ("id") ON DELETE CASCADE
) /* One piece of long work. Its id is the id of the row it works on (an optimisation's), */;
CREATE INDEX IF NOT EXISTS "idx_jobs_user_id_260af5" ON "jobs" ("user_id", "created_at");
CREATE INDEX IF NOT EXISTS "idx_jobs_status_4f4765" ON "jobs" ("status", "created_at");
CREATE INDEX IF NOT EXISTS "idx_jobs_user_id_843017" ON "jobs" ("user_id", "status");
        CREATE TABLE IF NOT EXISTS "job_tasks" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "kind" VARCHAR(64) NOT NULL,
    "key" VARCHAR(64) NOT NULL,
    "done" INT NOT NULL,
    "error" TEXT,
    "created_at" TIMESTAMP NOT NULL,
    "finished_at" TIMESTAMP,
    "job_id" CHAR(36) NOT NULL REFERENCES "jobs" ("id") ON DELETE CASCADE,
    CONSTRAINT "uid_job_tasks_job_id_5dce93" UNIQUE ("job_id", "key")
) /* One task of a job's fan-out (`JobControl.run_tasks`), keyed by its job and payload: a */;"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        DROP TABLE IF EXISTS "job_tasks";
        DROP TABLE IF EXISTS "jobs";"""


MODELS_STATE = (
    "eJztXetz2zYS/1cw+hJnxvXEz3bcm5uRZdpRIks5PdJOoxsWIiEJNQmoIBjHk8v/3gVISR"
    "QfsqiH9Th+sUVgFyB/Cy4Wuwvwe8nlNnG8k3vCiMCS2C2p/g2eS9foe4lhl8CPbKJjVMKj"
    "0ZREFUjcczTXYExuegE9JZoA99S1JYGmjx2PQJFNPEvQkaScQSnzHUcVcgsIKRtMi3xG//"
    "aJKfmAyCERUPHlv1BMmU2+QeNw+aXke0SY1FY9WYLo/rEsAdlMlSex9L0XiYLnNOXziKTR"
    "Rq/VjYwezT4ljj2DXtCWLg8agrJOp3p7pynVg/ZMizu+y6bUo2c55GxC7vvUPlE8qm6Caw"
    "RAhU+I+7gowAoKpPDJBCR7WmCTPvYdJYbSv/o+sxT6SPek/lz8O7y1CJlp1htts2W0TbOU"
    "Q2oWZwpJyqQS0fcfQbtTQHRpSXVQeV9uHp1fvdUQcE8OhK7UcJV+aEYsccCqxT1FWf9P4F"
    "wZYpGO85g+hjTc6DIYjwumIE+H9hi+MUAbgLTk4m+mQ9hADuHy7N27ORh/Ljc1zEClcebw"
    "LgYvbD2sOgvqFN5TfKN3loC5Tb7JdJhjbK+HdmkLw7dt/N5WLbue97cTRfToofy7Btt9Dm"
    "tqjfr9mDwigUqtcRMDngs6oAw75khwdyTzgJ/CehDD/bVFMJ3JLJjm8kggyVkIYAkBJCbi"
    "pJY3mO9qGVThTjGzSEIWiUZeURlZvie5m1MlldpNo35r3jVqtcZv1fq9mrkJs80+dxz+BP"
    "LpsgejXDebxmej2ao26tfIJZiZgnwlwoM2oL7xYNTbnQeo4S5h0ne77KZplD82Ou1r1APz"
    "5ZH7sstalXLtk+7Cs7Az0m2XmzfVdrN8b1wjLHoU0BuQLrtvVm+v0UBQu8sqnVa7AW1Hni"
    "7nVHV+tsBMdX6WOVGpqvhQGRt2y42RMfcrDg5b4L7MOzZum+U7EKHm7bLP5Vr1ttw2QDRf"
    "sUNtdYsgwUq7+lmJD2y7r0RJtPIeCm6VQK0hFAGN0Ww2mteICMHFMhI8vVpAgqdXmRJUVb"
    "MSDB8AnhNGsgdgpEjzQ6tRT9e46dwxadrUkuh/yKGeXECqob28B8pXwTJf+cb1bMzQVg3E"
    "le8IC/glQaXkkcMs10r4L/dWTdc0PZ86kjLvRHW7jWXNZsRCRJ8LV6kxE4AW1Monn3T2Ql"
    "BrF5TvwcQJyPssxXivsgzLMcYVkwtlG5PHuw3BDjcL/346O734+eKX86uLX4BE3+Wk5Oc5"
    "kqnW2/FpIrBxckAa4Xg9OE/3BM6IKyuB6C3USOqSdFhnOeMKJGQ9Gf/Yw9VOCR7QbjDnOb"
    "QF5q1+qg9Gq11++DSjRZRlpmrOZpY/49KjuHE0aQT9Vm2/R+oS/dGoG3FlM6Fr/1FS94R9"
    "yU3Gn0xsR9x849IxarO6aWQvKfVZzkLquyL1MUYRsYd3H52RJi7uRd3SEZZ1+qZ315R+wR"
    "WtvP39x1RPtIIqCe0dF4QO2EfynFiBxgANoy2dsJn9hHRaOtVEAj9NwiPRAQXPDk8MawWN"
    "e7lVKd8aJY1wD1uPT1jYZgbUITZqsefwQYr9exM2cPexSRyc4YUOAR9Hte4njdb4YG+Xhw"
    "kBpBlPa0Ls89SwOpDRqkcfP+ORUTczHpNV7pkbL8EMTHg77Fv1FML2gfdKKeFVVXw8L6D6"
    "F+8tFkAtNRhBI0osgngfOZwN0BMXjyeoKj1EbUQ9JIdE/YJq9UvwJ0SlJvIQLMSOMEMcWn"
    "Opp4fAG+/tcdw5tJFOuszjCCN4UsXfh9WPjfqCu8DoIc/v/UVgPYqhEE+uhthDWCIXdDS0"
    "ShTvSel45VjxggFiTVTEfrcb+32E50v3+KbjPKY/iFjMrDv26mIBd+zVRaY7VlXtvUMdSH"
    "1i5xzDpf90jI7yjQfcXdbs1Os6JCJ8xnREpNWpVAzjVhF5vmURYiu6u3K1por6mDrqulKu"
    "V4yaLrIUJo4T3svWPesjwdVblc9PGOEpnINrdw6q2TBtuZCtvKYcS71RO2atvkLmCpaSuK"
    "O0KFKmpzDKUnheE65CrdVMQeDRPElSpt4bzh2CWYa/MIU9BnIP+DeF8qTkdbXHTaNRm9Ee"
    "N9V44kPn4cYAja7HNhDRYEGcxH8Sq100C2XCcAga47VzTwrHeLZi2U8X6SKOcbBbxXJSn+"
    "Vcg9T36P3bISGn+MGTUu5TRr3hUmKOsRZy3mU5Dwm8kz3QxksIOs5bSHqXJV2EtorQ1kGE"
    "tiT2HlcMz3zgvTa0ckBIbzoso+FKD82MkZwbnjEnUlssRqPIVXhERzzeeEDKfuK+REd/Qo"
    "8VzqTgzonwWdDun2+P0SN5JjbqPeuAiAqTqGDICD87HNvXCKcGadbeS5fpJuUQSyQwQ0dc"
    "qHCNIIAJ/UrgP8J9SYRmD/xVyKbEfquoGJdIp7UBlXyiFsmK1nxRiKo6uJsgxBKJ3eSKuG"
    "T6eVK1foqHJ3zLV4u0bHIhthYPTxFg2UqARQ3vPNgG5AW0C0Brc5ayXWiud3LMUngkC49k"
    "4ZHcO4VyuB7Jwlf1/+HBUMuIfA6MKUfhv5jvvwgXFCu6L8JEvf0E9EXvxXQ05XVebHJxnp"
    "6cm7JUz8zizV64TzaGp6QT7/hhNcUBNDuThJj/eI7iVI4VD4XYt8TE/OCXdMphqxUmHHpe"
    "kG7YaRpBvqEvSJd9Kjfb1XLtGo2wkBQ7cSfg1pINv1I7X25blGeXxbKkg2P9p13o2SwPwh"
    "OGA4T3dKHswdM52YOnKdmDVJ0jMYJ+iQl2Uh79nsJauDvy63nAV1lgS5y+lOQs8F8Cf+Wr"
    "M12YfMA0z+3kizIW6OdHH6ZENe/DLZnKN2N6BG7ITjF77hyOsw3NrDZiIumrRjY1Ebw72V"
    "SG8xyh3DY6NzUDfWoalao6I2vW4aMrZ73bTaNci8lA8kfCPBNWZHmCizGuIo88HjWgbORL"
    "M4ApB65xtgLYOLDcl0shm+AroE1EujzQoOGBjp6ElztFI8zRxOnsSyrh/ZkZ16GEs7fxZG"
    "9em7OPZ0ub11R/B7N5DfolYiSInCSiLSqYJOduiOeg9hbSAeMCVI3aaUUFUed/5np7svh3"
    "Q1QH9SYVIf3sGfxwQ/qTwFO+CE2MbYVQzf5YEC8GZootAMUWgN0Jor+4BSBNDawB1tRPtO"
    "ylEngR4pgWnIEZ7gHVO7XatrMVxgdjzclTiJydtUCGQvTcrsW2GKg4Jwmy/8etvPGQ8oeH"
    "Sf3jY5p/RerY+GdkDTEbaA5CVd4CgvksOMqJkW8yHlvcRB9dxny3R8Sx5mZcDqEvRGy1mw"
    "CjEIJgh4ESlYfIN4uMpN5toOQnYZWNwjONszcXRN+6oL9ik8FWNxmEQlgc2CnD6/mpdh7f"
    "4qsly9hDmwndFAfn7+Jam6refSvvl6xibMUbscQbAavhYdpGkex8lSnHQQAeywdaKGHlfE"
    "7CynkyYaX4fMpuqZviOx17IqjCB5uttgof7MZ8sLsm6414Dbfs4tpRjFfycW15Q4524Kb4"
    "tcaO3WxnlvKNbn5vTbEbZqu7YYiLaa7E9AnDeuz87XrKZg+1vVzkXAOgyj7U9jJxssEIe9"
    "4Th5d4iL1hHpwTjAe4rjq7vFwI8cs5iF/GEaeeCVNTv58Ee+55ElG24kyJHGdKFOZ49mg/"
    "LHM8YTdmWzQJi5KSFQ9JO2RzMn6uwOrnyR0qODvxIam9QW6T64oyEdQallJWFmHN8by1BZ"
    "7S7MzioggMrxgYzvzSa7aVm/2p18K+zbBv1UuVA+GQ/ADR3cg2YuhRkrQPQGd7/iMsr+/t"
    "3/MATA6Tcv2T2Y9/AHtYhOc="
)
