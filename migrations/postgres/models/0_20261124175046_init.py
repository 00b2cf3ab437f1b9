from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        CREATE TABLE IF NOT EXISTS "users" (
    "id" UUID NOT NULL PRIMARY KEY,
    "email" VARCHAR(254) NOT NULL UNIQUE,
    "password_hash" VARCHAR(255) NOT NULL,
    "is_staff" BOOL NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS "generated_strategies" (
    "id" UUID NOT NULL PRIMARY KEY,
    "name" VARCHAR(200) NOT NULL,
    "description" TEXT NOT NULL,
    "original_prompt" TEXT NOT NULL,
    "generated_code" TEXT NOT NULL,
    "strategy_type" VARCHAR(32) NOT NULL,
    "status" VARCHAR(16) NOT NULL,
    "validation_results" JSONB,
    "parameters" JSONB NOT NULL,
    "performance_metrics" JSONB NOT NULL,
    "usage_count" INT NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL,
    "updated_at" TIMESTAMPTZ NOT NULL,
    "user_id" UUID NOT NULL REFERENCES "users" ("id") ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS "idx_generated_s_user_id_d5bce2" ON "generated_strategies" ("user_id", "created_at");
CREATE INDEX IF NOT EXISTS "idx_generated_s_user_id_a074d3" ON "generated_strategies" ("user_id", "status", "created_at");
CREATE INDEX IF NOT EXISTS "idx_generated_s_user_id_efabca" ON "generated_strategies" ("user_id", "strategy_type", "created_at");
COMMENT ON COLUMN "generated_strategies"."strategy_type" IS 'TREND_FOLLOWING: trend_following\nMEAN_REVERSION: mean_reversion\nMOMENTUM: momentum\nBREAKOUT: breakout\nSCALPING: scalping\nARBITRAGE: arbitrage\nGRID: grid\nCUSTOM: custom';
COMMENT ON COLUMN "generated_strategies"."status" IS 'DRAFT: draft\nVALIDATED: validated\nACTIVE: active\nARCHIVED: archived\nERROR: error';
CREATE TABLE IF NOT EXISTS "strategy_generation_logs" (
    "id" UUID NOT NULL PRIMARY KEY,
    "prompt" TEXT NOT NULL,
    "status" VARCHAR(16) NOT NULL,
    "provider" VARCHAR(32) NOT NULL,
    "model" VARCHAR(100) NOT NULL,
    "ai_response_raw" TEXT,
    "extracted_code" TEXT,
    "error_message" TEXT,
    "processing_time_seconds" DOUBLE PRECISION NOT NULL,
    "tokens_used" INT NOT NULL,
    "attempts" JSONB NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL,
    "strategy_id" UUID REFERENCES "generated_strategies" ("id") ON DELETE SET NULL,
    "user_id" UUID NOT NULL REFERENCES "users" ("id") ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS "idx_strategy_ge_user_id_003050" ON "strategy_generation_logs" ("user_id", "created_at");
CREATE INDEX IF NOT EXISTS "idx_strategy_ge_user_id_3bd21b" ON "strategy_generation_logs" ("user_id", "status", "created_at");
COMMENT ON COLUMN "strategy_generation_logs"."status" IS 'SUCCESS: success\nFAILURE: failure\nPARTIAL: partial';
CREATE TABLE IF NOT EXISTS "aerich" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "version" VARCHAR(255) NOT NULL,
    "app" VARCHAR(100) NOT NULL,
    "content" JSONB NOT NULL
);"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        """


MODELS_STATE = (
    "eJztW21v2kgQ/iuWP7XSXdSQl6vQ6SQDTuorwZExadVyshZ7gVXsXWqvk0a9/vebNTYYvx"
    "BMgUCOL7zMzuyun2c9Oztj/5A95mA3OLnGFPuIY6fLxdfoSa5LP2SKPAw/ypV+k2Q0mcxV"
    "hICjgRtZjRJ1K5jqExwpoIH4b3PQGSI3wCBycGD7ZMIJoyCloesKIbNBkdDRXBRS8i3EFm"
    "cjzMfYh4av/4CYUAd/h87h71c5DLBvEUeMZPs4Gh9xGdQWmgKOeBg8qzS9Tos/TXBWVww8"
    "ubeGBLvOAlpT20g+NQRZr6e1riJNcWEDy2Zu6NG59uSJjxmdqYchcU6EjWib4ZgCTOAR45"
    "yIptiAgPshnoHizAUOHqLQFbDLfw5Dagu0pWgk8XH+Vzy1lJpldXTT6qqmZckVWLIZFcgR"
    "ygUlP35O+50DEkllMUDzg2K8Obt8G0HAAj7yo8YILvlnZIg4mppG9M5Rjr5zODfHyC/GOd"
    "HPIA0TXQfjRDAHeb6UE/gSgLYAqeyh75aL6YiP4W/t3bslGN8pRgQzaEU4M7j3pjdoJ26q"
    "TdsE3nN80zPLwWzi77wY5ozZ7tCWX2D5mupnU/TsBcE3N43omxvlcwS29xS3tPXOdaKeYq"
    "DZ1hsZ4JlPRoQi15r4zJvwKuAXmL6K5b5rCuY7lw3bWhUG8pZHAtYgILfx5r28SkMv4kCD"
    "mSJq4xwXuU526IzsMODMq+iSZNNQOy3rSm+39U9a51rs3Jg61pC5LnsEfvr0RlU6lqHeqU"
    "ZX0zt1ycOIWj5+wH4AfUC7fqN2zN4NtDAPUx56fdowVOWj3jPr0gDCl3sW8j7tNpX2bTRE"
    "YCN3EvWtGA3NNJRrtS4hf0AAvRHu02tDa9WlkU+cPm32uqYOfaeuruJWdVZbYac6q5VuVK"
    "Ipu1SSQG69NZJY73BxOD4a8qpro2UoV0BhZNund0pbaymmCtQ8IJc4YorAYNPU7gR9ENs9"
    "YMFo8wMIWoJQewwi0FENQzfqEvZ95q/D4OnlCgyeXpYyKJoWGYwvAK4TVnIAYBSw+XdX7x"
    "R73GLrDJsOsbn0r+SSgK/AahwvH4DzFbAsd75ZP5sJtEUHWec7QT784uBSqvCwaPVL+K93"
    "V83PNIOQuJzQ4EQM+xLHmu3Qgv0h8z3hxiwA2id2NX6KzY9EbZyoMICNE5APaUHwrtGSyD"
    "FjleGF0K3x8W5LsMNk4ev32un5H+fvzy7P34NKNMuZ5I8lzGgdMwNrKveSQ7UFLZx4uBja"
    "Rcvsio9NT5IfBxiey3CBjk7dp3jzWhauazdq11RubheWvQglREttIV5PpG+yu/msE+mTZn"
    "6QxF/pi95Rs3fHTM/8Ios5oZAzi7JHCzmpvFQiTVBbvJkmzpqsL1oeWd8X1hOMUrTHs0+7"
    "0FkOdtU8aspkk8nU/Y39nsmdivT08L4wdSqgykN7xXxMRvQjfsodmTKAxuWAXtzNYUI6l8"
    "49kY8eZ/n89IKCa4crhuA2wl2Bw3NLlSOEB8i+f0Q+nNGLoY6xEacTl40KArZG3MHVRwO7"
    "qCRtGgOelF2uZ5222ehgzzM5AiJAWY2lgFyAON/k1bysBFEIo5x4bDHSUuwKilylIJcXum"
    "aJpgK297jYdSxgvWgBq3p6/5jV/8Wk8qFlCquDL3d7zaba7dalILRtHAR9eqVo7Z6hiv6J"
    "G/q4T28Vw9SUdl2aIJ8T5O5HGhBW9wNxiiKT8qJu2mafaVmzsLv5bHm0e1VBeGbwCuE9Xa"
    "lufrqkbn6ar5sjIvLQExgXWxBPVvHvBaZrob6f8d7O/DzgKyKuNaq3ecsj/mvgL0pLlgeb"
    "D4TileDPGh7Rr44+bIli34cpWSKvZQUYJuQUhD1XLkPlgWZZHxlKhqKTrWWmT7aVm15CSk"
    "vvNdqqdGuoTU3U2BdzY1FjdKT65pJpPsBQlXaGA87uMQ0sOIEVnKRKKwAZq2MFIFsBQJxj"
    "OABVKnulbfaj1iXGezW1rmNRpnz1H2Z6fpWizCzhVS1TlDH7hZTR4ezxzyaIjkWPY9HjgI"
    "oeRW5gA7AWvlpykE7gWYgzXnABZpiD1Om128uKS9uskkSru6Aokqz68hqIWDjbL3gcSxYv"
    "WrLAHiKVsoczg81kD59HeXfv3Fycr/LOzcV5+Ts3oi375GUQPDK4iccoGFfKg2cNX2G2tn"
    "ZxsRLiF0sQv8giTgILtqbhMA92gzEXI1riQFJmGagHYLctrGeS3XqMhq63F04mDS2biOrd"
    "NFTjzenbxdTI8SG+/+95MReKr/K4zOKLwus/KbNOOLlv66H0MZmCN9Ve9vmig0Fum6Gzgn"
    "1ij+WC4DluWRo+o7nO3sTPpYnqwvC5ID8du4b9jeg2kp8uD5fjt/KqBHIpk2MIt1oIJ26q"
    "CgjH6q8Q3a08zgAjclz0Ikt5ySVlsvuKy8ukJTdWW6kQNW1+M/v5HynCkkU="
)
