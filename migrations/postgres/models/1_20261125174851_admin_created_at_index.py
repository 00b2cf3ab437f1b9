from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        CREATE INDEX IF NOT EXISTS "idx_generated_s_created_bfb11d" ON "generated_strategies" ("created_at");
        CREATE INDEX IF NOT EXISTS "idx_strategy_ge_created_5eff40" ON "strategy_generation_logs" ("created_at");"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        DROP INDEX IF EXISTS "idx_strategy_ge_created_5eff40";
        DROP INDEX IF EXISTS "idx_generated_s_created_bfb11d";"""


MODELS_STATE = (
    "eJztW21v2kgQ/iuWP7XSXdSQl6vQ6SQDTuorwZExadVyshZ7gVXsXWqvk0a9/vebNTYYvx"
    "BMgUCOLyGendldP896dnbG/iF7zMFucHKNKfYRx06Xi5/Rk1yXfsgUeRj+KVf6TZLRZDJX"
    "EQKOBm5kNUrUrWCqT3CkgAbi2uagM0RugEHk4MD2yYQTRkFKQ9cVQmaDIqGjuSik5FuILc"
    "5GmI+xDw1f/wExoQ7+Dp3D5Vc5DLBvEUeMZPs4Gh9xGdQWmgKOeBg8qzS9T4s/TXCRbvpa"
    "TGRybw0Jdp0F9KZ9RfJpRyDr9bTWVaQpbnRg2cwNPTrXnjzxMaMz9TAkzomwEW0zXFMACn"
    "xi3BPRFCsQcD/EM5CcucDBQxS6ggb5z2FIbYG+FI0k/pz/FU8tpWZZHd20uqppWXIF1mxG"
    "BZKEckHRj5/TfueARFJZDND8oBhvzi7fRhCwgI/8qDGCS/4ZGSKOpqYR3XOUo98czs0x8o"
    "txTvQzSMNE18E4EcxBni/tBL4EoC1AKnvou+ViOuJjuKy9e7cE4zvFiGAGrQhnBs/i9IHt"
    "xE21aZvAe45vemY5mE38nRfDnDHbHdryCyxfU/1sip69IPjmphF9c6N8jsD2nuKWtt65Tt"
    "RTDDTbeiMDPPPJiFDkWhOfeRNeBfwC01ex3HdNwXwns2Gbq8JA3vJIwBoE5DbivJdXaehF"
    "HGgwU0RtnOMi18kOnZEdBpx5FV2SbBpqp2Vd6e22/knrXIudG1PHGjLXZY/AT5/eqErHMt"
    "Q71ehqeqcueRhRy8cP2A+gD2jXb9SO2buBFuZhykOvTxuGqnzUe2ZdGkD4cs9C3qfdptK+"
    "jYYIbOROor4Vo6GZhnKt1iXkDwigN8J9em1orbo08onTp81e19Sh79TdVdyqzmor7FRntd"
    "KNSjRll0oS2K23RhLrHS4Ox0dDXnVttAzlCiiMbPv0TmlrLcVUgZoH5BJHTBEYbJranaAP"
    "YrsHLBhtfgBBSxBqj0EEOqph6EZdwr7P/HUYPL1cgcHTy1IGRdMig/ENwH3CSg4AjAI2/+"
    "7qnWKPW2ydYdMhNpf+lVwS8BVYjePlA3C+ApblzjfrZzOBtugg63wnyIf/OLiUKjwsWv0S"
    "/us9VfMzzSAkLic0OBHDvsSxZju0YH/IfE+4MQuA9oldjZ9i8yNRGycqDGDjBORDWhC8a7"
    "QkcsxYZXghdGt8vNsS7DBZ+Pm9dnr+x/n7s8vz96ASzXIm+WMJM1rHzMCayr3kUG1BCyce"
    "LoZ20TK74mPTk+SfAwzPZbhBR6fuU7x5LQvXtRu1ayo3twvLXoQSoqW2EK8n0jfZ3XzWif"
    "RJMz9I4lL6onfU7NMx0zO/yGJOKOTMouzRQk4qL5VIE9QWH6aJsybri5ZH1veF9QSjFO3x"
    "7NMudJaTXTWPmjLZZDJ1f2O/Z3KnIj09vC9MnQqo8tBeMR+TEf2In3JHpgygcXmgF3dzmJ"
    "DOpXNP5KPHWT4/vaDg3uGOIbiNcFfg8NxS5QjhAbLvH5EPZ/RiqGNsxOnEZaOCgK0Rd3D1"
    "0cAuKkmbxoAnZZjrWadtNjrY80yOgAhQVmMpIBcgzjd5NS8rQRTCKCceW4y0FLuColcpyO"
    "WFr1miqYDtPS9+HQtae1PQqp7uP2b5fzHJfGiZw+rgy91es6l2u3UpCG0bB0GfXilau2eo"
    "on/ihj7u01vFMDWlXZcmyOcEufuRFoTV/UCcokilvMibttlnWtYs9G4+ex7tZlUQnhm8Qn"
    "hPV6qjny6po5/m6+iIiLz0BMbFFsSXVfx7gelaqO9n/LczPw/4ighsjWpu3vKI/xr4i1KT"
    "5cHmA6F5Jfizhkf0q6MPW6LY92FKlshzWQGGCTkFYc+Vy1B5oFnWR4aSoehka5nqk23lqp"
    "eQ0tJ7jbYq3RpqUxM198VcWdQYHbG+uWSaHzBUpZ3hgLN7TAMLTmQFJ6nSikDG6lgRyFYE"
    "EOcYDkCVymBpm/2ofYnxXk3t61ikKV/9h5muX6VIM0uAVcsUZcx+IWV0OHv8swmiYxHkWA"
    "Q5oCJIkRvYAKyFn54cpBN4FuKMF1yAGeYgdXrt9rJi0zarJtHqLiiSJKu+vCYiFs72CyDH"
    "ksWLliywh0il7OHMYDPZw+dR3t03OBfnq3yDc3Fe/g2OaMu+iRkEjwwe4jEKxpXy4FnDV5"
    "itrV1crIT4xRLEL7KIk8CCrWk4zIPdYMzFiJY4kJRZBuoB2G0L65lktx6joevthZNJQ8sm"
    "ono3DdV4c/p2MTVyfKnv/3tezIXiq7w+s/gh8fpvzqwTTu7beih9babgy7WXfd/oYJDbZu"
    "isYJ/YY7kgeI5blobPaK6zN/FzaaK6MHwuyE/HrmF/I7qN5KfLw+X4K70qgVzK5BjCrRbC"
    "iYeqAsKx+itEdyuvM8CIHBd92FJeckmZ7L7i8jJpyY3VVipETZvfzH7+B3ZvnO0="
)
