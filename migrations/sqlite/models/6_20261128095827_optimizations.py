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
    "eJztXW1zm7gW/isaf2k6k2aal3Z3snfujOM4XbeO3XXs7FvusDLItjZY8oJI6rt3//uVBB"
    "gMwgX8GqovbSx0BDwHHek850j6uzalFrLdkw+IIAcyZN0x8d94XrsEf9cInCL+R3alY1CD"
    "s1lURRQwOLSl1Disbrh+fYxkBTgUv03G64yg7SJeZCHXdPCMYUp4KfFsWxRSk1fEZBwVeQ"
    "T/5SGD0TFiE+TwC7//hxdjYqEvvHH+8/ea5yLHwJa4k+kgeX/Iarza0iWXQea5X63kv6fB"
    "5jOkqhv/LR5k9miMMLKtJfT8tmS53xAvGwxa1zeypnjRoWFS25uSqPZsziaULKp7HrZOhI"
    "y4tsA1BqDAJ8A9LPKx4gXM8dACJCsqsNAIerZQQ+1fI4+YAn0g7yT+ufh38GixaobR6faN"
    "u2bfMGoFtGZSIpDEhAkV/f2P324EiCytiRs0fqz3js7fv5YQUJeNHXlRwlX7RwpCBn1Rqe"
    "4IZfl/CufGBDpqnMP6CaT5g5bBOCyIQI4+7RC+EKAtQFqbwi+GjciYTfjPs7dvV2B8X+9J"
    "mHktiTPlfdHvsJ3g0pl/TeAd4Rt/shTMffSFqWFOiO0O7doePt9+85e+aHnqun/ZcUSPbu"
    "u/SLCn8+BKu9v5EFaPaaDR7l4lgKcOHmMCbWPm0OmMFQFfIVqJz33XKohGMpMPc0U0kJbU"
    "CiihgNRAnLbyTeJNpQ5a/EkhMVFKF6lGdmiMTM9ldFrQJNX6vWbn2rjpttvdn1udD2LkRs"
    "QyRtS26TPXzwO5bdY7Rq953+zdtbqdSzBFkBgOekKOy9vg17u3zU5/cMuv0CkizJs+kKte"
    "s/6pO+hfgiGfvjxSjz2Qu0a9/VnewjWhPZNt13tXrX6v/qF5CaAzxBy9MXogH3qt60swdr"
    "D1QBqDu36Xtx17u4JD1flZjpHq/CxzoBKXkp9KOLEr942E0jv8OCwHjljRb+O6V7/hKpSy"
    "D+S+3m5d1/tNrponaGNLPCLXYKPfuhfq43O7JyQ02viRF1wLhZoTXsTrNHu9bu8SIMehTh"
    "kNnr7PocHT95kaFJeWNRi8AH9P/iW7HAyFNj/edTtqi6uWTmjTwiYD/wM2dlkOrQbz5Rdg"
    "fAUsq41v0s4mJtqigaTxnUGH/8W4SSmih2WptfAv16sin2boYZth4p6I2+7DrdmOWpAzos"
    "5UmDGDA+1gs5h+1OJaURtXlOfygZMj7xHF5L1FMmaOCamEXjDZmj7ebgl2/rD8vzdnpxff"
    "XXx//v7ie15FPuWi5LsVmml1+slhwp/jFIA0JrE7OE9fCJwxKiuF6DW/wvAUqWFdlkwakE"
    "D0JPzjBXo7Nf6CVpfY82AusMr7ad027/r1289LVkTMzMSVsyX3Jyw9Sk6OFo2An1v9H4H4"
    "CX7rdppJY7Oo1/+tJp4JeowahD4b0IrRfGFpiNqybZpZJbW+LKm1fihaDzGKqT14+viItK"
    "C489LSMZFNctOHO5X+ChUt2P7Ro5KJFlClob2hDsJj8gnNUx5oAtAg2jIImnmZkEalkSVy"
    "4PMiPBL/oPi78zfmvoLEvX7XqF83axLhITQfn6FjGRlQU/54U/xf6e4pZr9XgfjNpx6yYQ"
    "YHHcDdjTVVIdhVPKbwjW06XhOwMAj4YdFom45frDe9Grhg5rghxO6jeWhVvjLRWekZjXXS"
    "pe6bvjQ9myZLIOEejxXcW9wpgO0jHdYU0WhRfLwq/vwnHeaLN9e6BIEZRiYCdARsSsbgmT"
    "qPJ6DFXIAtgF3AJkj8xS+Lvxz6DDCTlVzA/dYjSIBvilz5CbxyXx8nubSt3OSBuBRAwN9U"
    "yI+4s2iBkUOnXNAFrjf8E3H3HfJCuPg1gS6ADEz5kMZbRUL2pHa8dmg9ZzxdVtKh8v2Gyh"
    "/5+6kJcjXOYf1KhK6W2ev3FznY6/cXmey1uPTi4w+8qoesgt9w7adBcyBCCb70A+kNOh0Z"
    "QXI8QmQA6W7QaDSb16KS65kmQpaod1NvtUXRCGJb/G7UO41mWxaZAhPbDp5l74GImUNFry"
    "pGq8ZkNJe6cS5VjIYq7yrbeEUSpXrUgc1Wd5DoAxlD05kq6JZJrMZFNFGdYlalVTMcxF/N"
    "ZUgx9F5RaiNIMuhVhXgC5CGX3xbKi5LdWo+rbre9ZD2uWsk8kcHtVZNbdPlt80rY5w/S+C"
    "9C23mTdhYCVbAYu07V0XGEbMPyMhnlPHEEPm91yml9WXIDWn9B/e+AlKwIG6S1PMIEu5NS"
    "ak6Iaj0fsp4niPfJIbfGJRSdlNWaPmRN60igjgRWIhLIoPu4ZnjmIx32eSsVQnrbYRkJlz"
    "o0EyK5MjxjLLSWL0YjqovwiIx4vHJ5VfKGegwc/cHv2KCEOdQ+cTzit/vH62PwiObIAsO5"
    "DIiIMIkIhszg3KbQugRQGaTZ+F0eiGySTSADDiTgiDoiXOMgjgl+Qvx/AEcMOVLc56uAhZ"
    "H1WtQilAGZBchrsWdsoqxoze8CUXGNP40fYonFbgpFXDJ5HqXVVzA8QS9fL9KyTUdsIwyP"
    "DrDsJcAiPu8i2PrVNbQ5oLUoUayuWslOhiKakdSMpGYkX5xBqS4jqbmqb4PBEG5EMQIjkt"
    "D8xWr+InAo1qQvgkS9lwnoV9mL6GsqSl5s0zlfymZWeOjJbOdsNz2VYn0g2/cEa/nTNXVy"
    "4V6TCxeaKb4+TyW6u3SSg+cbYjPagruQ6L1H1nAfhtBFRrk18ApRnRO4WkElcgJ1xm1lMm"
    "6pXKOAnwrt5LYkVAkTtwzzRZ4kz4vsHM+LVIqnO0NmETsW1tfGa+PGS86jXOo5puKbz9ZI"
    "QkwrZiuKUXDhmEBnnq0TFRU+Z/6+p5XhiK4CCBd434utwjr13q/qedaVAvKrX/vNegJy/k"
    "D8DQ11FCLTa0hI6fzzpLcQAMQog3ZxXBdiGtgksEPksrKeQVpUb1FW3lhLOEtsgpWU0zpY"
    "Y2kWtB+NEXUkeYlGI2xiRExFrP7GpjDD5qxoI6GakWikUkq57g6u2k3wuddstMRmnsuhFn"
    "lRMp+LuHKvWW+ndOAIR7BQH4jLHMY8UtyvMvNIm9JHA04QVLDP2UpZljoMtVRqei8zKrjp"
    "d8U2e0W41JSgTskokZKhl0TuNQFJp8RkKqDCKTF6kd63kBCjE5++DT0nUiDy5jUkxHQKVG"
    "q3Zr0iTq+I2yqk66+IU9mBDcCqPOCtohgn7GD5lYcjKopS4Jfde/SG+hamIrArIhGbw6ov"
    "2qsSWLtKCZUf2VfSQsMPMV9qqLHoBl9fylkHgud9E/C8QEi+EsshxWktl3LvS8HLA0zeuH"
    "A6sxGIAiVyZeWEPotac2DhYOWkXBO5tJBzS/dQrruM41ALvyq9BHOvSzB9HRTANayvE04V"
    "fBEmht9NjCEsFuhMSx4GmV2pGAP1mEFHZVWkltZq2riaDihfQAeFVApaGKtSFk4rZfvGrb"
    "Rd08rR0e1vRy1LnlkxMlMhqknN1aRm0v9bk4Wr6Ek0xwkCTvGhHeoKWp9n+gpfsiCjchIm"
    "ERmWb/Mr9ARtT3wGEVUBXMR+AEfxZo/5e0yHyJF7R/mfxDGQh4QMITMnUSspxmQL93ggcs"
    "cqcASXNrsSu2G9Bi7jHcMFCHIJiQWgZNXuVsle5j+Dpln2SrMESsgPbCSgiRYF0TIKSNec"
    "aIbVS2F5YLH5TUOpj60+yKlpiSx9fTz1NhUiBmuFX70iS38hoXPyc+Tk61zLbJNf3VxL7Y"
    "FrD1x74Gt54GES0vIBswovXF3xeJUnvsj+URyJeyAbXGWdp6n3ujqYva5mDp3OFMN69uqh"
    "SKISG5Xset3Qy9vqpzj4NbmJz91dsIWP6/ob+Ax6TdE+tj0HPZDP9V6/VW9fCp6OBbzj/r"
    "fv4V/3E7aKnc8YlzlkteSf1C6BfH6WA+Tzs0yQxaWEAy1GsyIILwQqCO9prhMwT1ecgHmq"
    "OAETG3wMmPH7IoNPmIrYd4WoXh9a3M5zfMUMjM9yim51mJbU+JfAX6+O3iP6fEgU4z5/JE"
    "MQO4aL+AOp1his4OhWtFGStSs1ELw92dZmPltm7Rh9RMQ1uEdWJB6TkNJbJqUTiWceM3yY"
    "CuCaFNPAJoGlHiuFbEpOQ5s6rcXlFhT6UwqX8c6tsAgrLLFaXIdOchjh7KPos4OFK86i1z"
    "nsm0iRZsiZOYhlcO2r8qSTkoehnkoFc/GYUIebGrE1DnbQFJFivSdL/jBUVamepOPC2SN4"
    "dePCe9+14+XMIPSmHQcSXdebdlRt047DNAJr7dnBnwF0Bu32vrMV7oOzi1bkKdxHxxvlyF"
    "AIDkMqsFJAxDmRf4J12MorFwg+PDiYOkxx/QEg3vocmBNIxlICYZG3APh45spNEgj6wpKx"
    "xW3c44H4ieHHUppQNuH3AsgSJ2JDEEDg78MgVOUC9MVEMyZPzBb6Y2IzhyBPNHsJQbzX6e"
    "UDevnA3g3fpqmqxesXjpulJSsRLd556EYvOjhEXxuLu3ummrLK7hQJMd0jSvQI7g1PVIed"
    "Z+erRBKVADyRD5QrYeV8RcLKeTph5Qna2PKTWP0drgpZH7W0PgqjvLmZIWdEnanw28qcSp"
    "IhrscFzcFqDrYKHOyh6XorrOGeKa4DxXjb+9Juk+KSBK6C1wqJ3WwyS3Cj219bo1fD7HU1"
    "DJpCXCgxfSGwmXn+fpmypVn+2buLHLN8Xitzli+vJbkF132mvBNPoDspgnNKsIJ+1dm7d7"
    "kQf7cC8XdJxLFr8KFpNEqDvfJ4oriYPpZIH0ukp+Op6Xhq3pg9o0nNKDFacwv5Kk8nl/rT"
    "n3S4JlQf6bCq4MRXv2/wTIKqwqVYKF8esMwV+1VBbptuWB052JzUFI5YcOV4lSsGozoH44"
    "vpOPqacfSnKKMkr1MQE9HuQD53QHSqAggH1SuI7lZWXfM7MkQUM//sQElMZPfBkRceryow"
    "A9/8YPbP/wFYMG/N"
)
