from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        CREATE TABLE IF NOT EXISTS "datasets" (
    "id" CHAR(36) NOT NULL PRIMARY KEY,
    "name" VARCHAR(200) NOT NULL,
    "symbol" VARCHAR(64),
    "timeframe" VARCHAR(16),
    "time_zone" VARCHAR(64) NOT NULL,
    "bar_count" INT NOT NULL,
    "start" TIMESTAMP,
    "end" TIMESTAMP,
    "stored_bytes" BIGINT NOT NULL,
    "import_report" JSON NOT NULL,
    "created_at" TIMESTAMP NOT NULL,
    "user_id" CHAR(36) NOT NULL REFERENCES "users" ("id") ON DELETE CASCADE,
    CONSTRAINT "uid_datasets_user_id_122222" UNIQUE ("user_id", "name")
) /* A user's market data, imported once and reused by backtests and optimisations. */;
CREATE INDEX IF NOT EXISTS "idx_datasets_user_id_9744c2" ON "datasets" ("user_id", "created_at");
        CREATE TABLE IF NOT EXISTS "dataset_bars" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "data" BLOB NOT NULL,
    "dataset_id" CHAR(36) NOT NULL UNIQUE REFERENCES "datasets" ("id") ON DELETE CASCADE
) /* The bars of one Dataset: zlib over services.market_data.Bars.to_bytes(). */;"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        DROP TABLE IF EXISTS "dataset_bars";
        DROP TABLE IF EXISTS "datasets";"""


MODELS_STATE = (
    "eJztXVtz4joS/isqXk6mKpudkMvMZre2ChInhx0CU8TMuXHKJWwBrtiSR5KT4czOf1/JN3"
    "wlmAAxrF9ykdSy+FrubnW3mu8NmxjIYic3kEOGeOMKfG9gaCPxR7rrGDSg4yw6ZAOHY8sb"
    "a/iDvEY4ZpxCXU42gRZDoslATKemw02C5egWcBmiPzFgQ/qIOJDUx8C0HUI5MgDBOgIQG4"
    "AiMc4A4zkYQ/2RI8aZ107ETLbJoJyPnchnGkQXDzXxdPPTj/AIqzMkxlAGLPMJARODAJS2"
    "aDsWEyKgE9uhiHnzWWQMHERBAMoxYEQQMi6WF7YxgNEToiNMETQY4DNkgyOx6CdTR+zv4a"
    "ATZw4YnDPwPJsD6E8sF4gJF/9S8uw9RizsnQeCi82vLtI4mSIxIRVQ/PFHQ0IhOz2u/vmn"
    "+MvEBvqG2KJbMw05QhdrEfhokPvjnEdtYiLLSGwKf6jXrvG547UNh52bW2+k5MRY04nl2n"
    "gx2pnzGcHRcNc1jRNJI/umCCMqHxvbLdi1rGBjhU3+RxMNnLoo+gzGosFAE+hacs81/jVx"
    "sS55B7wnyR/n/w6WFhumab2+qj0oqqY1MltULiG1rYImXewJsb1NzCWC33/48y4A8Vob8g"
    "HXP7cGR2eX7zwICONT6nV6cDV+eISCzz6px40Fyt7vDM7XM0jzcQ7Hp5AWC10H47BhAfLi"
    "PQ7hCwHaAqQNG37TLISnfCb+bb5/vwTjL62BB7MY5eFMhODxJVIv6Gr6fRLvBb5sbo+JVQ"
    "bhBcVaGAe7tJoQX56vgPDleSHAsiuJr5CfaEJLbuIE0eGhfHq5Asqnl4Uoy64sytpfQvuU"
    "RTki2p28aAzV623J4G3vZqFgBYAu5lmcO5jnw5ygScFs+q37JpanchF/a56efzj/eHZ5/l"
    "EM8RYatXxYAnynp6ZlMIc0B1FhWSG5RwvEcEiUgtQIqE7CP/ZPWiwBT+3cKw9q6/6znN5m"
    "7KvlIdVSFdnT9FrnqdajtCSJJgG/dNSfgfwX/N7vKWnzJBqn/t6Qa4IuJxomzxo04piEzW"
    "FTgrcI55iJyzkbkNR8rTJfGSdUnBDGc3FYyjK4bU4L5WGa8pBE4j+azbOzD833Z5cfL84/"
    "fLj4+D6SjdmuZUKy3bmTcjLB3qzg9A+yGkXyV5YL/3no9wpOY2nC9Mtm6hz81zuqbs0MWB"
    "zOxq5piSMxO5GPfYvzmQQq8eKFNsDRfevXtHlw3e2302+UnKCdYk7sEF1SACYpNyAHK/e2"
    "SF9HH1vzQEbviWAM1MlSuRjzoqzqGomRbNI/Ul1l94I7RHqcJo+53pDQhZWE9lYoFHOKP6"
    "G5B3BHrANiPe9YEzgyh8E0+wnponWxJyl8jlx08Q0lPrv4xIj7R8HWw3XrRml4CEtH5zOk"
    "hpaAWvaQJkm1RGOTXTFZRzBHeaeidkDZx0gl4scAWZ4ztZg3MX/q3lp4GQ55iNtNO4WrDT"
    "GcequU00niHBCKHfEhRi8647VxOPJFh3zk3yYTz5sdPOoK/GWZY0CeEAWhc/rEd6pr8iEn"
    "ci0nQi56Zt3Ru6wrfpMT57i3U+7sUl7rQlM1VyjnGKjBLnydt7ryB/ZiJ7XsyDsEYEjn+c"
    "iGFClso0PBfkrmXEs+MBcj20WYlu1OrzX4LTIuIwOm2+/dtXPMy/ZvqtJKmZfhq13O1khS"
    "7TYcsx/GRhndmOFGlhWh4lvRMomFWPeRAS+aJsn9t4J1kjVGSqjRuxDCBy5/Ted5yjQ7aK"
    "lKjdiiMX+8iVZTrcVYvqzOCqOzxyDRJbYXd9mLg/zP6e+9nLF1+LcO/1ZBq+4g/BtfWQZm"
    "FX0rMAxTZDsMnr3B9lWVX9Xl3rGEARMOT7vMksATak6FfWhpDiW2k6M4i8HPIT2I7b5rFi"
    "w0mS7UXBkOZClrBqzBgIwizkp5Bbt2xnRMhVNSk+xQGOku48QuKZIa6kDp3Wi3/W63/0un"
    "dyc1N8LC1iaWRZ4Ff0b4Xmn1tIHyRRk8dPq9K2AjiDUq0+SYmEP09++Vnjq8Fz3ERpi79g"
    "i3B0rrU3+oXoGxMF8eictHWBiU3c/eI5gOLcebW56+1EHrTrkCkI5Ngd4UjfDdoHNzBabU"
    "NEb4evig9sXcsU9XUlWdNVfQVGfNQkUluzIh8sCwW2+PhNQ73BwGhRNedm/cDFq3goUe7Q"
    "h/aXU70qkvWPMELVNGPAR/Wtdq54tkn7DtnpDk6PXPouFGMlSfiSYxRhkM+oMrgCgldB0O"
    "bj5FJ/gA4nOKncwEGDncLA7Y5VO/KmpXTdfpzsJzDpQJZhzRUnxIUtVR082zBdEJobYUY5"
    "oAmpp6Of7kk9eM2jijXCYUZ+lkuBTV7nI/3m8J9k3nwgU2TglIYxS7g/N0T+CskzCKoT7g"
    "JAzHWJPrScqa61Xhek5OYrD6OvWmTr2pTnzrFak3GcecPOxZZJqXXhtMcPvp5XyaMKp1F0"
    "3aJdO9PR5mM2tyjKcNIfZlYVgdyG79USq9q2SwNX+j5QRcC3dkcdA1cnLmvBoVD7zWwdTK"
    "BFPLh5rqCNMrAxz75rUuD37jYXh9rTw8XAHm6jpibIRvW53ucKDI+U3LpWiEP7cGaqfVvQ"
    "IOpNyEVjVc0mJ3P5lGnllXnGAQp6kyW9ZMMth85MbTZmUQjggOEN7TlXI4TpfkcJxmczig"
    "KWMijngu0oQxXka+55AewnXzXct5ga+0wNbIJMhS1vivgb8Mc2q2UD7CNC8Ff5qwRr88+k"
    "IlSr0vlqR5JRUYEgsycsyeW4vAYkOzaI4USyZykq1FSU62FSdZwpSb/rDdVcDngXLdkfke"
    "Scei1+kdsb5apu9MGSitbroABnlEmGmyilOJ0EmKqo5GZS4YY8flmg9TCVzTZDWwaWCJy9"
    "dCNkNXQ5uGFjEhQYPkRMbFy50jEZZI4nzyNYXw/mjGTQhhyDmynXKJTXGaamRpyOcdTJYG"
    "RQ40qUaJm2uRFMqZDF0tZ7K6kSPqUMSjcMKqez5LWY2df1D5SeYUe3VmKPrqmhTJNOFSgq"
    "mIvhqsOighVSfpFAut/UzXWCVJJ4rplQt+pcheEQXbH+PsxZhXnQRTJ8HsURJMnhjYAKy5"
    "N7n3Ugi8CHFKCiZgFmsAvWG3u7E6P2smgoT5M0tSQGIpNiskf8TTe16uZNPHCMgQMpIVZy"
    "AIZ/mJARlq8KqnL25z/BPI22VzoM8gnnoUyJQpIUDoM68oO8Dom3+bKV7UZgvPGGHs2mNE"
    "j8P67jNZLB4ZpixJDwIIAJyIGSWrGEDfdORwIPvD4vUguPpQXAs+/tb5z8tUhK9L6Gz+9L"
    "jkor/PhNWBXRAcUgHNjZ3O68vNbx0Vq+/XVfGsbcqnu3rZghcpsvqNWOONEKfhGSmVbLWg"
    "OAjAU6lWK+UCnS3JBTrL5gLVt6yrJW7q67x7wqjaB1sstmof7NZ8sFXj9Va8hm/s4qooxq"
    "/ycW26lHVJF5fnwM3xa4WO3WJnlvSNbv/aUn3R6E0vGiEbmqVy/iOCzdj5b+spS1ZtvFjl"
    "S7jEqOKqjReZr+FyIGPPRLzEM8hmZXDOEB7guap5cbES4hdLEL9II24yTaimySQLdpsQC0"
    "FcIEBiZOlS38T/EsVtYB217LjUd7/fTRh+7U7aLTC8byuDo1MP+kUuXV235P/XHM/YjatU"
    "CIh/yXLqdSxx0f0VxcYrakLmHW7M3C8oKwHTIdvceTGTt607sTfIbfN80ULU1GeNnBNG0H"
    "O87IwBF2Mqc8ioA8SvDBAXFoYrtnaLK8PVdm6BnStfqhIIB8MPEN2t3NQu/Jqw4ghAjGT3"
    "Xv89D8SUMC03r8x+/A/4eKvK"
)
