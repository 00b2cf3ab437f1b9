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
COMMENT ON TABLE "job_tasks" IS 'One task of a job''s fan-out (`JobControl.run_tasks`), keyed by its job and payload: a';
        CREATE TABLE IF NOT EXISTS "optimizations" (
    "id" UUID NOT NULL PRIMARY KEY,
    "strategy_version" INT NOT NULL,
    "code" TEXT NOT NULL,
    "base_parameters" JSONB NOT NULL,
    "status" VARCHAR(16) NOT NULL,
    "objective" VARCHAR(40) NOT NULL,
    "spec" JSONB NOT NULL,
    "data_source" JSONB NOT NULL,
    "data" BYTEA,
    "trials_done" INT NOT NULL,
    "trials_total" INT NOT NULL,
    "best_parameters" JSONB,
    "best_metrics" JSONB,
    "walk_forward_efficiency" DOUBLE PRECISION,
    "warnings" JSONB NOT NULL,
    "look_ahead" JSONB NOT NULL,
    "error_message" TEXT,
    "cancel_requested" BOOL NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL,
    "started_at" TIMESTAMPTZ,
    "finished_at" TIMESTAMPTZ,
    "strategy_id" UUID NOT NULL REFERENCES "generated_strategies" ("id") ON DELETE CASCADE,
    "user_id" UUID NOT NULL REFERENCES "users" ("id") ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS "idx_optimizatio_user_id_1a34f3" ON "optimizations" ("user_id", "created_at");
CREATE INDEX IF NOT EXISTS "idx_optimizatio_user_id_4231f9" ON "optimizations" ("user_id", "strategy_id", "created_at");
COMMENT ON COLUMN "optimizations"."status" IS 'QUEUED: queued\nRUNNING: running\nSUCCEEDED: succeeded\nFAILED: failed\nCANCELLED: cancelled';
        CREATE TABLE IF NOT EXISTS "optimization_folds" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "index" INT NOT NULL,
    "in_sample_bars" JSONB NOT NULL,
    "out_of_sample_bars" JSONB NOT NULL,
    "best_parameters" JSONB NOT NULL,
    "in_sample" JSONB NOT NULL,
    "out_of_sample" JSONB NOT NULL,
    "look_ahead" JSONB NOT NULL,
    "optimization_id" UUID NOT NULL REFERENCES "optimizations" ("id") ON DELETE CASCADE,
    CONSTRAINT "uid_optimizatio_optimiz_1bcf29" UNIQUE ("optimization_id", "index")
);
COMMENT ON TABLE "optimization_folds" IS 'A walk-forward fold''s result: the best in-sample parameters and how they did after.';
        CREATE TABLE IF NOT EXISTS "optimization_trials" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "number" INT NOT NULL,
    "fold" INT,
    "parameters" JSONB NOT NULL,
    "metrics" JSONB NOT NULL,
    "value" DOUBLE PRECISION,
    "created_at" TIMESTAMPTZ NOT NULL,
    "optimization_id" UUID NOT NULL REFERENCES "optimizations" ("id") ON DELETE CASCADE,
    CONSTRAINT "uid_optimizatio_optimiz_0dfdab" UNIQUE ("optimization_id", "number")
);
COMMENT ON TABLE "optimization_trials" IS 'One evaluated parameter set; (optimization, number) is unique, so a batch evaluated';"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        DROP TABLE IF EXISTS "optimization_folds";
        DROP TABLE IF EXISTS "optimization_trials";
        DROP TABLE IF EXISTS "optimizations";
        DROP TABLE IF EXISTS "job_tasks";
        DROP TABLE IF EXISTS "jobs";"""


MODELS_STATE = (
    "eJztXVlz2zgS/isovcSp8ngT2znWs7VVsq1klHGkrCxnLk9xIRGSGFOABgDtaGbnvy8AHh"
    "JJkCZ1mWLw4gNEg+TXYKMvNP5qTImNXHZ0CTlkiDfOwF8NDKdI/JG8dAgacDZbXJANHA5c"
    "1df2O6lGOGCcwqEcbARdhkSTjdiQOjPuECx7N4HHEH3GwBTSO8SBpD4EznRGKEc2IHiIAM"
    "Q2oEj0s8FgDgZweMcR40y1EzHS1GFQjseO5D1tMhQ3dfB488Pf4lvcnyDRhzLgOvcIOBgE"
    "oJyLtkMxIAJDMp1RxNR4LhmAGaIgAOUQMCIIGRePF7YxgNE9oreYImgzwCdoCg7EQ987Q8"
    "T+EXY6ms0Bg3MGHiZzAP2B5QNiwsW/lDyo24gHe65A8LDzh4csTsZIDEgFFL/91pBQyIuK"
    "q7//Lv5ysI2+Ira4bDm27DEUzyLwsSD3+83urJGDXDs2Kfyuqt3i85lqu7lpX75TPSUnBt"
    "aQuN4UL3rP5nxCcNTd8xz7SNLIa2OEEZW3XZot2HPdYGKFTf6riQZOPRS9g71osNEIeq6c"
    "c41/jTw8lLwD6k7yx+m/g0db6mZZnW7fum71LauRmqLyERLTKmgaijkhpreDuUTwr7/9cR"
    "eAqNaGvMHFD83ewcnr5woCwviYqosKrsbfilDw2SdV3FigrH6ncL6YQKrHOeyfQFo86CoY"
    "hw0LkBffcQhfCNAWIG1M4VfLRXjMJ+Lf4xcvcjD+3OwpmEUvhTMRgseXSJ3g0rF/TeK9wJ"
    "fNpwPilkF4QbESxsEsrSbEr08LIPz6NBNgeSmOr5CfaERLTuIYUf1Qfvm6AMovX2eiLC+l"
    "Ubb+FKtPWZQjot3Ji8ZN/2JbMnjbs1kssAJAD/M0zm3M9TDHaBIwO37rvonlsXyI745fnr"
    "45fXvy+vSt6KIeNGp5kwN8u9NPymAOqQZRoVkhOUczxHBIlIDUDqiOwj/2T1rkgNdvf2xd"
    "95sfP8nhp4z94Sqkmv2WvHKsWueJ1oOkJIkGAT+1+z8A+S/4tdtpJdWTqF//14Z8JuhxYm"
    "HyYEF7GZOwOWyK8RZhjZqYz9mAxPC1ynxlnFBhIQzmwlhKM/jcGWfKwyRlnUTiP4+PT07e"
    "HL84ef321embN6/evohkY/pSnpA8b7+XcjLG3rTg9A1ZiyL5K82FD9fdToY1liRMfmzOkI"
    "P/KVN1a2rAwjgbeI4rTGJ2JG/7FPaZBCr24YU6wMHH5s9J9eDiqnue/KLkAOcJ5iwZ0SUF"
    "YJxyA3Kwcl+L9HV0sTsPZPSeCMZgOcmVi0telKKukSWSTfpHqrvYPeIOkR6n0Z3WGxK6sO"
    "LQvhMLijPGP6K5ArgtngPioc6sCRyZN8Ew+wnponUxJyl8iFx0yxNKvLt4Y8R9U7B5fdG8"
    "bDUUwtLR+QCpbcWgllfIMUm0RH3jl5ZkHcEc6ayi84Cyi1GfiB895CpnajZvlvype6vhpT"
    "ikEJ8eTxO4TiGGY/WUcjhJrAEh2xEfYvSoM94ahD0fdchH/m0yUt7s4FZn4E/XGQByjygI"
    "ndNHvlPdkjc5ks9yJOSiUusOnqdd8ZscWOPeTrizS3mtM1VVrVDWKKjBLFzPW115gz3bSS"
    "0v6IwADOlcj2xIkcA2Mgr2UzJrNflAXYx0F6Fanrc7zd4vkXIZKTBX3c77c416ef5Lv9VM"
    "qJfhp11O14hT7TYcsx/KRpm1McWNNCvCha+gZrIUYt1HBjyqmsTnXwHtJK2MlFhG34cQXn"
    "P5azzXLabpTrlLasQWi/n9HVRsac3G8vHlLDM6ewhil8T04h57tJP/nv7c0/Q14V8T/q3C"
    "qrqD8O/yk6Vg7qOvGYphgmyHwbMnmL791s/9fO9YTIEJuyddZnHgCXXGQj90rRkl05lm4c"
    "wGX0Nai+m+axYsVrKhWObKcCBNaRiwAgNSC3FayrewN02pjolwSmKQHQqjocc4mZYUSY1+"
    "r9W5tN51r666P7U77+XKjbDQtYnrkgfBn1v8sdXsWL3W51bvut3tnIEpgtiiMk2OiTHE9e"
    "7HVqd/81FcIVOEuTe9xee9VvPH7k3/DAyE+nJHPH6LhUJ59Undgg2hO1NjS+ur32u+b50B"
    "SAeOQG+MbvH7XvvyDIypY9/ii5vrfleMvfR2JZeqk+MCK9XJceZCJS+lQuSBYrfaHAmpdz"
    "g5bApHvOzcuOw13wkWKtpb/Ll51ZZOfcGae+g6MuIh+NO86Lc/S/YJ3e4eSY5e/CAaLiVD"
    "hxPRJPq0er1u7wwgSgldhYObT9EJXkC8p5jJTICh4WZ2wE5PvVbUrpqu052F52ZQJphxRE"
    "vxIU5loqabZwuiI0KnUoxZAmjqDMvxR09uGLVxRnlMLJylk+ESVLvL/XixJdg3nQsX6Dgl"
    "IF2i2B2cL/cETpOEkQ11jZMwZvaKXI9TGq5XheuanMTg6U3qjUm9qU58a43UmyXfqNp1+K"
    "e/6zCNeZhT8+7Hx7NpuktD1Qh2nR9T2sYuGa8JWBgEfB8NekXGe2tN5wMXaI4bQuzzQg+t"
    "yywrlQ1XMjb9gQwammi0bD7Miz9/IYOCqVxdjMDMQUMkU65cgsfggdC7I9DmDDg2cNRmY/"
    "mXuCz/kruIHa46MSDs1gOIYxugn7Hnh0lf2lZucosZARCIN5X0I2Es2mBEyVQQMsC8wRck"
    "zHe5+xlG/00gA5CDqVjSVHaZoC2YKZYbWi8YT1edTKj8aUPld45uq1F2qDzsX4vQ1bY3Pu"
    "5h/EF09ZBdcg43/nPTupGhBJ/6FvduOh0VQaIexiqAdH1zcdFqXcpOzBsOEbJlv3fN9pVs"
    "GkHHlf9fNDsXrSvVNJSYuG7wLE8eiJhRIr+qcm7VJRrjS924L1WuhjrrKlt4LSjqtz1+K4"
    "k+kHM0nemCbpmO1WUS46hOeVaVVLMoEq/GONIsveeEuAjiDPeqhjyZDE78MhvbQDlq2XEy"
    "eLd7FZMe5+1knsjNx/OWkOhqbotOju8/SOMfhbaLJu1EBHWQGLtO1TFxhGzBsp8e5SJxBF"
    "VjYiWuxylNKYPqhA3SXB452GGTldicIDV8rjKfJ0h8kwMhjVdgdJLWcLrKnDaRQBMJrEUk"
    "kEN2t2Z45gMZ9MUoNUJ622EZBZc+NBMimRuesSKuFYvRyO4yPKIiHs+Y6Iq/Ix4HB/8Vd7"
    "wgmFPiHlEP++P+9/khuENzv1qtDIh8CUrBzuDcJdA+A1AbpNn4XW6xGpJPIAcUYnBAqAzX"
    "UCQwce6R+A3giCOqyH1/FbAdZD+XvWTdWpUFKHrxB2eIssvWfvEjYuJpUkVrzS7/Xe7yNw"
    "GWLQZY5PQug63f3UBbAFpbWxc11ztp66uiGo+k8Ugaj2T1BUp9PZLGV/VteDCkGVHOgbGg"
    "MP6LfP9FYFCs6b4IEvX2E9BHvReL2bTVCoIljfNYNrPGQk9mO2eb6akU64qU7wn28ptjWJ"
    "5AZBzm2L4RZ8rvz9OR1qnm9eYySkpWITG1R9YwHwaQIWu1PfAaUpMTmM+gFXICTcZtbTJu"
    "idqj4NyXquQWI6qFiIvDfFokyfM0O8fzNH2U1wwNy8ixsL8RXhsXXkqPYsSjQ82cz+ZIgs"
    "wwZiuM0fjCt1epeX98RNsq1CweSLyhpY9CZFoNCSqTf560FgKAOOFQc3zjY7hGZAbYJLAD"
    "xPiqlkGa1JQoW11YKzhXKIKVpDM8WGNrFnTvrBGhynmJRiNn6CA81MTq37kEZsicnDESrB"
    "nJQWrFlMvuzflVC3zqtS7asphnPNSiLirPZxRX7rWaVykeUGkIlvoGlmmqoUfK+9VGj3QJ"
    "ubPgBEGN9zmbKXGqarClVuq9yqgQop/JMntlfKkpQpOSsUJKhtkS+aQJSCYlJpMBNU6JMZ"
    "v0voWEGJP49G3wOZECUTSvIUFmUqBS1ZrNjjizI26rkK6/I04nBzYAq/aAt5pinJCDq+88"
    "HBHZlAJ/1dqj74gvYWoCuyYSsTms+nK8OoG1q5RQNckeSQsNJ2Kx1FAr+gwe38rZBNLP+1"
    "3g5wWS8pncDilPazlTtS+lXx44+DsGpzMXgUWgRO2snJAH2WsObCfYOZk+RHlL99Duu1zG"
    "oRHOKrMF80m3YPo8KIFr2N8knGr8RQ62/M8kOh+9qCM7TVkNZ3atYgzE4xYZrcoiPbVh08"
    "bZVKF8ARMU0jEoElYrSTjDlO0Lt5XlmmGOiW5/O2yJWWblnJkaUuPUzHdqJu2/Nb1wNT2J"
    "5jDhgNNMtKruoPX9TI/4SyJnVEGHycIZVqz4FbqHrienwcJVARji34OD5WEPxXtMB4iq2l"
    "H+lDgE6pCQAeTDyWKUlMdkC/e4xapiFTiAsWJXshrWc8C4+DAYQFBQKCwAwXnVrZJfmf8M"
    "xs3ypG6WgAnFgV0QGEeLxtEyCpyuBdEMu6+EZcVi85uG0hxbXUnVdIUsfXM89TYZIhdrjV"
    "2dk6UfUZic/AI5+SbXMlvk1zfX0ljgxgI3FvhaFniYhBQ/YFZjhes7HuZZ4lH2j+ZI3IoU"
    "uMo6T9PUuqpMrasZJdOZZlnP3j20oKhFoZJd7xvav1I/5cFvqCI+19dBCR/G/AI+N72WHN"
    "9xPYpu8admr99uXp1JPx0P/I5PX75HzO57xy53PuMyTZXZUlypjYF8clwA5JPjTJDlpYQB"
    "LVezMghHBDWE92WhEzBf5pyA+VJzAqZjiTVgJu6LLKEwlZHvGlKzP7S8nBf4Sg1MaDllSx"
    "2mKQ3+K+Bvdkc/IfpiSZTrvngkSzp2LIbEA+n2GOT46HLGWNFrt9JC8OJoW8V8tuy14+QO"
    "YWYJi6xMPCZBZUompROJZx63fJhK4JokM8AmgSUeXwnZFJ2BNnVaCxMSFPoqBePi49ZIhB"
    "xJrCc3oZMCQjj7KPrsYGHOWfQmh339aCFFM+hQixJPq5FkypkUnZEz6bWRIzqjiGeEMfJS"
    "0JOU1Zj5tYqTO2NMqJDisuqQQ9EU4XKCKYu+GqyqlZAyIfdsoVXfkPuTF0TZH+XM1EOpSO"
    "KCqYdSt3oo1RQCa5VDEc8AOjdXV0+dCPI5OBYqJwXk8+LkqALJH8E5UyU2YcgQMvIPBw9H"
    "ecaADDUEZ36H2cPfAyRGn4PhBOKxokCOTAkBYj1jqv4ERl+VkpHahLHhe9xiP+f+UFFjwi"
    "fiXgDZ8rBxCAII/BIXklUMoK9DNOPqMHLJPy7rZAQpuNm7M5a/OrMzw+zMeHLBt2nrPHr9"
    "0iHJNGUtAvE7j4qZ/RxVtLUdeXdvqHdZZX8UCTLzRazwRQhreKI7Rz47FWhBUQvAE6lWhX"
    "KBTnJygU7SuUD30HVsPz/YLx5WSvroqc0pI6uLmxmiI0Kn0m5b5cCXDHKzLhgfrPHB1sEH"
    "WzVeb8Vr+MQuropivO2Sv9t0cSkHrsavFTp2s51Z0je6/W1LZqPRk240QlPolMr5jwg2o+"
    "c/racspuUfvzotoOWLXplavrqW9C0w9kDERzyBbFIG5xRhDe2q41evCiH+KgfxV0nEHWaJ"
    "pWk0SoOde/LTMpk58cmc+GTU8ZQ6ntIbszWa+GnXDOmcG2Vq81/6o+zhHMhSIXXGjYPWhK"
    "nOOncMsC9ksCZUH8igruAsV1/Y4JkYdYVLU6hhdcDCDy9VMaIuyG3TVm0i6gwnDY21Glw5"
    "zLNX4aJPZQxWk2ywZrLB/SLtpqjltERibKZiNpP8qEogHHSvIbpb2fUv7sgR1phH2dGkJZ"
    "LdR5D2PKhXwkzZ/GL29/8BMegtag=="
)
