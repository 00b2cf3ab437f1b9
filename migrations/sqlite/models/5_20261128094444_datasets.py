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
    "eJztXVtz4joS/isqXk6mKpudkMvMZre2ChInhx0CU8TMuXHKJWwBrtiSR5KT4czOf19J2A"
    "bfCCZADOuXXCS1JL6WulvdLfG95hILOezkBnLIEK9dge81DF0k/khWHYMa9Lx5hSzgcOio"
    "ttaskSqEQ8YpNGVnI+gwJIosxExqe9wmWLZuAJ8h+hMDLqSPiANJfQxs1yOUIwsQbCIAsQ"
    "UoEu0sMJyCITQfOWKcqXIienJtBmV/7ESOaRFTDGrj8ea7H+AB1idItKEMOPYTAjYGAShN"
    "UXYsOkTAJK5HEVP9OWQIPERBAMoxYEQQMi6mF5YxgNETogNMEbQY4BPkgiMx6SfbROzvYa"
    "MTbwoYnDLwPJkCOOtYThATLv6l5FkNIyb2ToHgY/urjwxOxkh0SAUUf/xRk1DISsXVP/8U"
    "f9nYQt8Qm1cbtiVbmGIuAh8D8lk779EY2cixYoti1lSVG3zqqbJ+v3Vzq1pKTgwNkzi+i+"
    "etvSmfEBw1933bOpE0sm6MMKJy2IXVgn3HCRZWWDT7aKKAUx9Fn8GaF1hoBH1Hrrnav0Y+"
    "NiXvgBpJ/jj/dzC1hWaG0enqxoOmG0YttUTlFBLLKigyxZoQy9vGXCL4/ces3zkgqrQmB7"
    "j+udE7Ort8pyAgjI+pqlRw1X4oQsHnGanixhxl9TuF8/UE0mycw/YJpMVE18E4LJiDPN/H"
    "IXwhQFuAtObCb4aD8JhPxL/19++XYPyl0VMwi1YKZyIEz0widYKq+qxO4j3Hl03dIXGKID"
    "ynWAvjYJWWE+LL8xUQvjzPBVhWxfEV8hONaMFFHCM6PJRPL1dA+fQyF2VZlUbZ+Eton6Io"
    "R0S7kxe1vn69LRm87dUsFKwA0Mc8jXML82yYYzQJmO1Z6b6J5bGcxN/qp+cfzj+eXZ5/FE"
    "3URKOSD0uAb3X0pAzmkGYgKiwrJNdojhgOiRKQWgHVSfjH/kmLJeDprXvtQW/cf5bdu4x9"
    "dRRSDV2TNXVVOk2UHiUlSdQJ+KWl/wzkv+D3bkdLmidRO/33mpwT9DkxMHk2oLWISVgcFs"
    "V4i3CGmbicswFJxdcy85VxQsUJYTgVh6U0g5v2OFceJikPSST+o14/O/tQf392+fHi/MOH"
    "i4/vI9mYrlomJJutOyknY+xNC87ZQdagSP5Kc+E/D91OzmksSZjcbLbJwX/VUXVrZsD8cD"
    "b0bUccidmJHPYtzmcSqNjGC22Ao/vGr0nz4LrdbSZ3lOygmWDOwiG6oACMU25ADpZut0hf"
    "Rxc700BG74lgDNTJUrm44EVZ1TWyQLJJ/0h5ld0L7hDpcRo9ZnpDQhdWHNpboVDsMf6Epg"
    "rglpgHxGbWsSZwZPaDbvYT0nnpfE1S+By56BYXlPjs4hMjPjsKNh6uGzdaTSEsHZ3PkFpG"
    "DGpZQ+okURK1jVctyDqCOco6FTUDyi5GOhE/eshRztR83iz4U/fWwktxSCHu1t0Eri7EcK"
    "xmKbuTxBkg5DviQ4xedMYbw7Dliw75yL9NRsqbHQx1Bf5y7CEgT4iC0Dl9MnOqG3KQEzmX"
    "EyEXlVl39C7tit9kxxnu7YQ7u5DXOtdUzRTKGQZqsApf560u/YE930ktK7IOARjSaTayIU"
    "UC2+hQsJ+SOdOSD8zFyHYRpmWz1Wn0fouMy8iAaXc7d80M87L5m641EuZluLWL2Rpxqt2G"
    "Y/bD2CiiG1PcSLMiVHwrWiYLIdZ9ZMCLpkl8/a1gnaSNkQJq9C6E8IHLX+NpljJNN1qqUi"
    "O2GGzW3karqdZ8LF9WZ7nR2WMQqxLLi/vsxUazzzlbexltq/BvFf4tg1bdQfh3cWYpmHX0"
    "LccwTJDtMHj2BstX137Vl3vHYgZM2DzpMosDT6g9FvahY3iUuF6G4swHP4P0IJb7rlkw12"
    "SmUHNFOJCmrBiwBgNSijgt5TXsuynTMRFOSXSyQ2Fk+owTt6BIquk9rXNj3Hbb7e4vrc6d"
    "1NwIC1ubOA55FvwZ4Hut0TF62het99Dqdq6AiyA2qEyTY6IPUd+91zp6/17UEBdh7rsD3O"
    "xpjU/dvn4FhsJ8eSQ+H2BhULY/qyGYCR1P9S1PX3qvcaddAUiHtkBvjAb4rte6uQJjalsD"
    "fN1/0Lui74VPV1BVndVX0FRn9VxFJatSIfLAsFtvjYTUO1wcFoUjXnRt3PQat4KFinaAvz"
    "TaLenUF6x5go4tIx6CP41rvfVFsk/Ydk9IcvT6Z1FwIxlqTkSRaKP1et3eFUCUEroOBzef"
    "ohN8APE5xUpmAowMbuYH7LKpXxW1K6frdGfhOQ/KBDOOaCE+xKmqqOnm2YLoiFBXijFDAE"
    "1tsxh/sskrRm2cUT4TirNwMlyCane5H++3BPumc+ECG6cApAsUu4PzdE/grJIw8qE+4CQM"
    "z1qT63HKiutl4XpGTmIw+yr1pkq9KU986xWpNynHnDzsOWSclV4bdHD76eV8mjCqdRd12i"
    "bjvT0epjNrMoynDSH2ZW5YHchq/VEovatgsDV7oWUEXHNXZH7QNXJyZmyNkgdeq2BqaYKp"
    "xUNNVYTplQGOffNaFwe/9tC/vtYeHq4A800TMTbAt41Wu9/TZP+241M0wJ8bPb3VaF8BD1"
    "JuQ6ccLmmxup9sK8usy08wWKQpM1vWTDLYfORGabMiCEcEBwjv6Uo5HKdLcjhO0zkc0JYx"
    "EU+MiwxhjBeR7xmkh3DdfNdyXuArLbA1MgnSlBX+a+Avw5yGK5SPMM0LwZ8krNAvjr5QiV"
    "LviykZ6kkFhsSErAyz59YhMN/QzOsjwZKR7GRrUZKTbcVJljDlpttvtjXwuaddt2S+R9yx"
    "qCrVEeurY8+cKT2t0U4+gEEeEWaGfMWpQOgkQVVFo1IXjLHnc2MGUwFck2QVsElgic/XQj"
    "ZFV0GbhBYxIUGD5ETGxebOkAhLJHE2+ZpCeH804yaEMOQcuV6xxKZFmnJkacjxDiZLQ4yL"
    "qEcRj3zeqzImTVkO9hxUEo09xuoxFIq++jZFMpe10O7Joy8Hqw5qJ1WZJPkafD9zClbJJI"
    "kCT8UiNAmyV4Rq9seCeDEwU2VqVJkae5SpkSUGNgBr5nXjvRQCL0KckIIxmMUcQKffbm/s"
    "MZo1sxXCJI8leQoLeSArZCgs5qC8/NxKFyMg45xIPosCQdjLTwxIf7h64nt+5eCfQF6Bmg"
    "JzAvFYUSBb5i0Aoc/Uy+EAo288GVvcxhgDjH13iOhx+Aj5RL5ojixbvpsOAggAHIkeJasY"
    "QN9M5HEg68MX1kGQn5//YPnirpuNl3q2vHrnZfOulCW30WdMWB3YOcEhvfK4MVdVdQP3rU"
    "M31SWwMp61bTm6bxZ9lSFBVu2INXaEOA1PSKGMoDnFQQCeyAdaKWHlbEnCylk6YaW6Clwu"
    "cVPdOd0TRlU+2HyxVflgt+aDLRuvt+I1fGMXV0kxfpWPa9PvLRd0cSkHboZfK3Ts5juzpG"
    "90+3drqtswb3obBrnQLpSYHhFsxs5/W09Z/GnBi1W+KUq0yn9a8CL1XVEeZOyZiE08gWxS"
    "BOcU4QGeq+oXFyshfrEE8Ysk4jYzhGoajdJgNwlxEMQ5AmSBLPkeNZl90982sI5Kdvwedb"
    "fbjhl+zVbSLdC/b2q9o1MF/Tzhq3pc4//XHE/ZjatcY1/8JuDEdixwG/sVL2KX1ITMOtzY"
    "md+iVQCmQ7a5s2Imb/s4wt4gt83zRQNR25zUMk4YQc3xsjMGnLcpzSGjChC/MkCc+3pZvr"
    "Wb/3xZZefm2LlyUxVAOGh+gOhu5Tpx7ndZ5UcAFkh27/Xf80BMAdNy88rsx/8A3ww+IQ=="
)
