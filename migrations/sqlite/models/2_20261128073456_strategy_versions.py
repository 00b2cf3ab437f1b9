from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        CREATE TABLE IF NOT EXISTS "strategy_versions" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "number" INT NOT NULL,
    "generated_code" TEXT NOT NULL,
    "parameters" JSON NOT NULL,
    "instruction" TEXT NOT NULL,
    "author" VARCHAR(300) NOT NULL,
    "validation_results" JSON,
    "performance_metrics" JSON NOT NULL,
    "created_at" TIMESTAMP NOT NULL,
    "strategy_id" CHAR(36) NOT NULL REFERENCES "generated_strategies" ("id") ON DELETE CASCADE,
    CONSTRAINT "uid_strategy_ve_strateg_bdc585" UNIQUE ("strategy_id", "number")
) /* One state of a strategy's code and parameters; every change of either adds the next */;
        ALTER TABLE "generated_strategies" ADD "version" INT NOT NULL DEFAULT 1;
        -- Version 1 of every strategy stored before versions: the code it holds now.
        INSERT INTO "strategy_versions" ("strategy_id", "number", "generated_code", "parameters",
            "instruction", "author", "validation_results", "performance_metrics", "created_at")
        SELECT "id", 1, "generated_code", "parameters",
            CASE WHEN "original_prompt" = '' THEN 'code before versions' ELSE "original_prompt" END,
            'migration', "validation_results", "performance_metrics", "updated_at"
        FROM "generated_strategies";"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        ALTER TABLE "generated_strategies" DROP COLUMN "version";
        DROP TABLE IF EXISTS "strategy_versions";"""


MODELS_STATE = (
    "eJztXO9vmzgY/lcsvtxO2lVr2m5T73QSSWiXWxomQrrplhNywEmsgsnAtKt2+9/vNYFA+J"
    "GGtEmTHl/aYPu1zfMY+/X7GH5IjmsR2z+6JIx4mBOrz8W/yb10jn5IDDsEfpQXeo0kPJsl"
    "RUQCxyM7tJrExQ1/Xp6SsAAeiWuTQ5kxtn0CSRbxTY/OOHUZpLLAtkWia0JByiZJUsDot4"
    "AY3J0QPiUeZHz9B5Ips8h3qBwuv0qBTzyDWqIl0yNh+5hLUGwpy+eYB/6Dheb3afD7GSkq"
    "m74WHZndGGNKbGsJvXldYfq8IkgbDDrti7CkuNGRYbp24LCk9OyeT122KB4E1DoSNiJvgW"
    "sKQIFPhHucNMcKErgXkAVIVpJgkTEObEGD9Mc4YKZAH4UtiT+nf0ZdSxUzjJ6qG31FNwyp"
    "AmumywSSlHFB0Y+f83oTQMJUSTTQ+iBrr07e/hpC4Pp84oWZIVzSz9AQczw3DelOUA7/53"
    "BuTbFXjHNcPoM0dHQTjOOEBORkaMfwxQBtAVLJwd8Nm7AJn8Jl482bFRhfy1oIM5QKcXbh"
    "WZw/sL0oqzHPE3gn+KZ7loNZJ995McwZs92hLT3D8NWVL7qo2fH9b3Ya0VdX8pcQbOc+yu"
    "mqvcu4eIqBVldtZoB3PTqhDNvGzHOdGa8CfoHpixjuu6YgWclMWOaqMJC3rAnYgIDcQpyf"
    "5RUWOCEHHegpZibJcZGrZIeTkRn43HUqTkmSrim9tnGhdrvq507vUqzchFnG2LVt9w74Gb"
    "IrRe4ZmnKtaP2O2jtHDsHM8Mgt8XyoA/LVK6WnD64gx3UI44EzZE1NkT+qA/0cjcB9uXED"
    "PmT9ltz9FDbhm9iehXXLWrOja/Klco6wN6KA3oQM2aXWaZ+jiUetIWsN+roKdafuruJSdd"
    "JYY6U6aZQuVCIrO1Rix26zMRJb73BwWB4e86pjo63JF0BhaDtk13K305Z1Bai5xTa1RBeB"
    "wZbeuRb0gW93SwSjrQ+Q0BaEmlNIgjKKpqnaOSKe53qbMHj8dg0Gj9+WMiiylhmMbgDuE0"
    "ayD2AUsPlXX+0Vz7jF1hk2LWpy9C+yqc/XYDXylw9g8hWwrJ58s/NsxtEWFWQn3xn24BeH"
    "KaUKD8tWj8J/s6cq2dOMAmpzyvwj0exzbGu2Qwvxxq7niGnMAKA9albjp9i8JurJiQp8WD"
    "gB+YAVOO8dVuI5ZqwyvFC2NT7ebAl26Cz8+61xfPru9P3J29P3UCTs5SLl3QpmOj09u0zM"
    "fZwKkKYsdgfn8YHAmQpl5RBtQw6nDimGddkyO4FEpkfxjwPc7Uhwg5bK7PvIF1i1++lcKX"
    "1dvvq0NIsIz0zkNJa2P3Hqq6xztKgEfe7oH5C4RH+rPSU72SzK6X9Lok844K7B3DsDW6kw"
    "X5wao7Y8N82sDVlftqxZ3xfWY4xStEe9T69IixD3umHplMlTxqb315V+IBQtov3jm8JItI"
    "AqD+2F6xE6YR/JfW4HmgE0UlsGUTWHCWmSmsxEHr5byCPpAQX3DncMe4UQd7nfktuKFCI8"
    "wubNHfYsowTqCBux2bPdSYH/24wquPioERuXRKEjwGNV63JRadedHOz2MEdAkfP0RIhdJ4"
    "7VCxmt4ehzG25q1C2Nx3yW03CyKZiBC29FbYuWVg60AsG1dESWi66LIGfBo7Hnwmstpu6N"
    "mFpdaqoVpkcKHIcWta4OvtQftFpKv3+O/MA0ie8P2YXc6Q40RdRP7cAjQ/ZJ1vSO3D1HM+"
    "xxiu39CEnD6L6lVpFbV37AIG2zz7RseMjg6ZWbcDWrgvDC4AXCe7zWGY7jFWc4jvNnODAV"
    "msgM2iUGOONV5vcC041Q309neWfzPOArPLANThLkLWv8N8BfyJyGA4sPuOaV4M8a1uhXRx"
    "+WRLHuQ5cMERQ0fAIdsgrcngvbxeWOZlkdGUrGopKtqSRH29JJVpDSVgfNroI+aUqrI857"
    "LAcWw8xwi/XNpvNgiqbI3QwH3L0hzDdgR1awkyqVTjJWtRqVlU8w5wQ2QJUk2LTNfuiuor"
    "0Xo7vWilb56D9MbWMdRWsRAKsWKcqYPSJkdDhr/IMBoloxqhWjA1KMiqaBJ4C18LWng5wE"
    "HoQ4MwsuwQx9QL1Bt7tKmduFahKLTSv0kpQetYZSktbCHpRIJJURJOKtBLljhFFcyy8+Ev"
    "tyhJmFkqOPvyNxFPsemVPMJqEFoUI/QbCe+Qh+IQY7zmyMcxttDBkLnBHxXofWzOVTaAsR"
    "i3IfWoggQHgMNQqqfES+m2TGkcgX/HHicxSdEzySXhcqQl+Xnrp5e3MpJ6UTVVJ2Svcjhe"
    "tKwTYkGuSPU3S26Yg9yTZkxVtxcxLWBzYx2N0eb+/xrd8E2sQf2k4IqT6Mvo97bSpaD8yq"
    "b4dmzOonYoMnAnbDU7eSMplYvAjAM7rkWsLZyQrh7CQvnNWvJO3XdFO/+3IgRNUx2PJpq4"
    "7Bbi0Gu29cbyVq+Mwhrj3F+FExrjUOn28zxBUGcAviWnFgtzyYJWKj2z/jW5/KfdZTucTB"
    "tNIBuYXB0/j5zxspW/7E0dnpOp84Ojst/8SRyMvGFnz/zoWHeIr9aRWcc4YvcF/VODtbC/"
    "GzFYifZRGnvgFL03icB7vpujbBrGQCSZlloB6B3bawXqTsdsZoqmp3yfFrdrJhgcFVU9Fe"
    "HYfQJ6d/6pd8/7/ueM5vXOd1On/pO42bvxf2kt3JIjnged8/PBjktuk6y8Sj5lQqcJ6jnJ"
    "XuM07K7I3/XGufj9Q+Sz8QUu7IlX8hpHbhSlw48VBVQDgq/gLR3cobO9AiJ0XfDSoPbqdM"
    "dh/QPnCNoYLX9PSL2c//ALuLh9I="
)
