from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        CREATE TABLE IF NOT EXISTS "optimizations" (
    "id" CHAR(36) NOT NULL PRIMARY KEY,
    "strategy_version" INT NOT NULL,
    "code" TEXT NOT NULL,
    "base_parameters" JSON NOT NULL,
    "status" VARCHAR(16) NOT NULL /* QUEUED: queued\nRUNNING: running\nSUCCEEDED: succeeded\nFAILED: failed\nCANCELLED: cancelled */,
    "objective" VARCHAR(40) NOT NULL,
    "spec" JSON NOT NULL,
    "data_source" JSON NOT NULL,
    "data" BLOB,
    "trials_done" INT NOT NULL,
    "trials_total" INT NOT NULL,
    "best_parameters" JSON,
    "best_metrics" JSON,
    "walk_forward_efficiency" REAL,
    "warnings" JSON NOT NULL,
    "look_ahead" JSON NOT NULL,
    "error_message" TEXT,
    "cancel_requested" INT NOT NULL,
    "created_at" TIMESTAMP NOT NULL,
    "started_at" TIMESTAMP,
    "finished_at" TIMESTAMP,
    "strategy_id" CHAR(36) NOT NULL REFERENCES "generated_strategies" ("id") ON DELETE CASCADE,
    "user_id" CHAR(36) NOT NULL REFERENCES "users" ("id") ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS "idx_optimizatio_user_id_1a34f3" ON "optimizations" ("user_id", "created_at");
CREATE INDEX IF NOT EXISTS "idx_optimizatio_user_id_4231f9" ON "optimizations" ("user_id", "strategy_id", "created_at");
        CREATE TABLE IF NOT EXISTS "optimization_folds" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "index" INT NOT NULL,
    "in_sample_bars" JSON NOT NULL,
    "out_of_sample_bars" JSON NOT NULL,
    "best_parameters" JSON NOT NULL,
    "in_sample" JSON NOT NULL,
    "out_of_sample" JSON NOT NULL,
    "look_ahead" JSON NOT NULL,
    "optimization_id" CHAR(36) NOT NULL REFERENCES "optimizations" ("id") ON DELETE CASCADE,
    CONSTRAINT "uid_optimizatio_optimiz_1bcf29" UNIQUE ("optimization_id", "index")
) /* A walk-forward fold's result: the best in-sample parameters and how they did after. */;
        CREATE TABLE IF NOT EXISTS "optimization_trials" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "number" INT NOT NULL,
    "fold" INT,
    "parameters" JSON NOT NULL,
    "metrics" JSON NOT NULL,
    "value" REAL,
    "created_at" TIMESTAMP NOT NULL,
    "optimization_id" CHAR(36) NOT NULL REFERENCES "optimizations" ("id") ON DELETE CASCADE,
    CONSTRAINT "uid_optimizatio_optimiz_0dfdab" UNIQUE ("optimization_id", "number")
) /* One evaluated parameter set; (optimization, number) is unique, so a batch evaluated */;"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        DROP TABLE IF EXISTS "optimizations";
        DROP TABLE IF EXISTS "optimization_folds";
        DROP TABLE IF EXISTS "optimization_trials";"""


MODELS_STATE = (
    "eJztXWtzmzoa/isafznpTE6mubTnTM7OzhCHtN46dtexcy7NDiODbGuDJReJpNlu//tKgA"
    "0G4Rhix5jVl6YWegU8D3r13hDfG1PqIJcdfUAEeZAj54bLP+Onxjn43iBwisR/8jsdggac"
    "zeIusoHDoRtIjefdLRb2xyjoAIfyt81FnxF0GRJNDmK2h2ccUyJaie+6spHaoiMm47jJJ/"
    "irjyxOx4hPkCcOfPmXaMbEQd/E4OLnl4bPkGdhR57J9lBwfsgbotvSIcYh99mzncL7tPjT"
    "DKn6Jn/LC5ndWyOMXGcJvXCsoD0cSLQNBq3Lq6CnvNGhZVPXn5K49+yJTyhZdPd97BxJGX"
    "lsgWsCQIlPhPu8KcRKNHDPRwuQnLjBQSPou5KGxt9GPrEl+iA4k/zn7O/RpSW6WVan27du"
    "zL5lNQqwZlMikcSES4q+/wjHjQEJWhvyBM2PRu/g9P2bAALK+NgLDgZwNX4EgpDDUDSgO0"
    "Y5+JvBuTmBnhrnef8U0uJCy2A8b4hBjh/tOXxzgLYAaWMKv1kuImM+ET9P3r5dgfGt0Qtg"
    "Fr0CnKmYi+GE7USHTsJjEu8Y3+SVZWDuo29cDXNK7PXQbuzg8e2bf/TlyFPGvrpJRA+ujT"
    "8CsKdP0ZF2t/Nh3j3BQLPdvUgBTz08xgS61syj0xkvAr5CtBaP+2tTEK9ktljmijCQldQE"
    "lCAgsxBntbxJ/GnAQUtcKSQ2ynCRGeQVlZHtM06nBVVSo98zO5fWVbfd7v7e6nyQKzcijj"
    "WirksfBT935No0OlbPvDV7N61u5xxMESSWhx6Qx8QY4nj32uz0B9fiCJ0iwv3pHbnomcan"
    "7qB/DobCfLmnPr8jN02j/Tk4BbOhOwvGNnoXrX7P+GCeA+gNsUBvjO7Ih17r8hyMPezcke"
    "bgpt8VYyfuruBSdXqyxkp1epK7UMlD6UdlbtiVe0bm0q/4cDgeHPGiz8Zlz7gSFAayd+TW"
    "aLcujb4pqHmALnbkJQoGm/3WraRP2HYPSDLa/CgaLiWh9kQ0iT5mr9ftnQPkedQrw+Dx+z"
    "UYPH6fy6A8tMxgdAPiPsWTzAQYCjb/cdPtqDWuWjrFpoNtDv4LXMz4GqxG9vIeKF8Jy2rl"
    "m9azKUNbDpBWvjPoif9xoVKK8LAs9SL8y82q2KcZ+tjlmLAjedpduDXboQV5I+pNpRqzBN"
    "AetovxoxbXRG2cKJ+JhVMg7xOF8d4iOZZjSirFCyZb4+PtlmAXFyv+/HxyfPbL2a+n789+"
    "FV2Cq1y0/LKCmVann14mQhunAKQJideD83hP4EyEsjKIXoojHE+RGtZlybQCiUSP5v/ZQ2"
    "+nIW7Q6RL3KbIFVnk/rWvzpm9cf17SItIyk0dOltyfeetB2jhaDAJ+b/U/AvkT/NXtmGll"
    "s+jX/6shrwn6nFqEPlrQSYT55q1z1JZ108wpyfqypGa9KqzPMUrQHl19ckVahLjXDUsnRD"
    "YZm66uKf1MKFpG+0f3yki0hCoL7RX1EB6TT+gp44GmAI2yLYNomP2ENG6NNZEHHxfpkeQD"
    "Je5d3LHwFQLcjZumcWk2AoSH0L5/hJ5j5UBNxeVN8X8Cd09h/V5E4lefesiFOTHoCO5uYq"
    "gawa6KY0rf2KXjFwI2TwJ+WAzapuO99aZXAxdZjhtC7Da2Q+vylMnJSk9oYpIuTd/soenJ"
    "NN0CifB4nOjc8kyqmalIS6dnbn5GOqMuKpKKjuLS2Z46p7zTnPKCmeK+pkr09ZzObZrFm/"
    "Y7C2bUdB7tBXm0IWTIKhfPVYjqWOHGY4V7mL0SXX3kFCSg8c+BOZCJqFD6jvQGnU6Qf/R8"
    "QoL0482g2TTNS9mJ+baNkCP7XRmttmwaQezK302j0zTbQZMtMXHd6Fp2nsaiw3+jIO+mZj"
    "OnYiMpVAsVtwzz2TqVSWf5hUlnmbokNkN2ET0276+V18aVV2BHMep7tuKZz2ckJaaJ2Qox"
    "CtcVE+g95XOiIGP4xMMa3r308VV4X0QQLvC+lWUvHaP3p9rOulBAfvFn3zRSkIsLEndoOZ"
    "Qo5kKu15CS0km/tLcQAcQph25xXBdiGtg0sEPEeFnPICuqy23KK+sAzhIFHWk5zUF5Dh6h"
    "e2+NqBcEL9FohG2MiP2kyOq4FObonBVjpKgZyUFqRcpld3DRNsHnntlsycLUpWU0PBhEPr"
    "+6OMz69EyjneHAk45goTmQlKmGHSnPVxs70qX03oITBBXR53xSlqWqQUutzPugdleofiZL"
    "xorEUjOCpSIO+6OWthJTDcNOlofE3TOOFFPjglIXQZITz1aIp70uIb+tybFoeWW3q9ttLz"
    "Fx0UpDPbi+MHsHx2+WFwpduFb/EqZ1CtcYh1451pclN8D6Hum/CpGsqFPLsjzCBLNJKZpT"
    "oprnKvOcKoFYt64hJaYLEzNvHug6T13nuVVIX17nqdIDG4BVuVlJTTFO6cHy9bQjKpsy4J"
    "eto72ioYapCeyKTMTmsOrL8eoE1muVhAYP2TNlofMHcb3SUGsxDZ6tD20YQMZ5f47ivEBK"
    "/sRA+OaxAGKCgIzLA0x+ZnA6cxGIEyUAEgdM6KPs9QQc7AA4Eu1HjRTu2zqHooL1yxIOjf"
    "lTFRaiJkpbC9Wl5mbllGaGIhcXqbyX1aNWviQyvww15KAArvP+uuBUES/CxAqniTWExRKd"
    "WclqBLNrlWOgPrfoqCxFamlN08ZpqlC9gE4KqQhaKKtSGk6Tsn3lVlqvaXJ0dvv/h5Ylz6"
    "xYMFMhqoOaq4Oaaf/vhVG4mr5VfZgKwCketKJBuNcKl4RxpmfiJYtg1JoBkzgY9nzEpEsQ"
    "QA/Q9eVjEIcqAEP8N3CQHPZQ3Md0iLw3ADMQPhKHgFEAwRByexKPkomYbOEcd4Q/YhuBAw"
    "g8JNDAD0j8BRyy+zeAcTExGEBQSARYACqmxfpRlvAadJhlp2GWiIT1gY0FdKBFEWgZRUHX"
    "NdGcdy+FZcVy85uGUm/BWEnTtESVvt5qcZuEyMVa4VevqNJfSOia/DVq8nWtZb7Kr2+tpf"
    "bAtQeuPfAXeeDqzdIUXnjurmr5nvii+kexvVtFNrjK+9aS3uuqMntdFf+6jP6ozAu/abJv"
    "W/0UB78RbOJzcxNt4cNYuIHPoGfK8bHre+iOfDZ6/ZbRPpdxOh7FHXe/fY94uh+wo4oH5e"
    "/ek5SpMi3rG7Vb/lhLsJoVQXghUEN4j9f6bNvxis+2HWc/2wax/AzKTJwXWcJgKqLfFaL6"
    "/dDiel7gKy2wEh8Py0pq/Evgr9+O3iH6YkmU6764JEsGdiyGxAWp3jFYEaNbMUbJqF2phe"
    "Dt0bY289ly1I7Te0SYJTyyIvmYlJTeMilbSDzzuRXCVADXtJgGNg0s9XkpZDNyGto0tIgJ"
    "DRp9j5RxMbkVGmGFJlaL69TJGkoYco6ms2LfMkzKVCNbWKsadnFe5M08xHNi7avqpNOS1a"
    "CnVslcPCbUE6pGbo2DPSQ/X1vsdZ0c+WpQVauZpPPC+St4ffPCO9+1Y38sCL1pR0Wy63rT"
    "jrpt2lFNJfCiPTvENYDOoN3edbXC/ENlK+oUEt8yW6NCIfkdtfXeFJB5TgToCEAwH+UnBm"
    "Q8PNjaIC5x/Q0gMfoTsCeQjAMJhGXdAhDrGQs2SSDoG0/nFrdxjjsSFoYfBtKE8ok4F0AO"
    "5kycIYIg3IdBUsUA+majGQfyuOSPy80cojrR/FcIkrNOvz6gXx/YueLbdKhqcfuF82ZZyV"
    "pki189daNfOqiir43l2X1bHbLKnxQpMT0jSswI4Q1PaKGKoFiiFoCn6oHWKlg5XVGwcpot"
    "WHmALnbCItZwh6tC2kctrT+FUV7dzJA3ot5U+m1lvkqSI67XBR2D1THYOsRgq8b1VqKGOw"
    "5xVRTjbe9Lu80QVxDAVcS15oHd/GCWjI1u/90a/TbMTt+GQVOICxWmLwQ2Y+fvNlK2ZOWf"
    "vDtbw8oXvXKt/OBYOrbA2CMVk3gC2aQIzhnBGvpVJ+/erYX4uxWIv0sjjpkllqbRKAv2ys"
    "8TJcX0Z4n0Z4m0OZ4xxzN2Y75Fk7EoMXrhFvJ1NidzNyHY4Lb7dYVL8S54ecByX0qvC3Lb"
    "9DQM5GF70lD4GtGRw1XeBoz7VMbd0KniF6aKH+KiiXXt3oSItnjXs3jlpCqAcNS9huhu5c"
    "VicUaOiMK4zc8FJEReP/6/5ymZAkbm5hezH/8DcbnZEw=="
)
