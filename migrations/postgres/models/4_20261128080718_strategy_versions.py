from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        CREATE TABLE IF NOT EXISTS "strategy_versions" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "number" INT NOT NULL,
    "generated_code" TEXT NOT NULL,
    "parameters" JSONB NOT NULL,
    "instruction" TEXT NOT NULL,
    "author" VARCHAR(300) NOT NULL,
    "validation_results" JSONB,
    "performance_metrics" JSONB NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL,
    "strategy_id" UUID NOT NULL REFERENCES "generated_strategies" ("id") ON DELETE CASCADE,
    CONSTRAINT "uid_strategy_ve_strateg_bdc585" UNIQUE ("strategy_id", "number")
);
COMMENT ON TABLE "strategy_versions" IS 'One state of a strategy''s code and parameters; every change of either adds the next';
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
    "eJztXG1z4jgS/isuf7m5qrnUhCSzW7mtrTLgZLgheMpAdmuHK5ewBahiSx5bniQ1O//9Ws"
    "bGxi8EEyDA+UuCJbVkP4/canW3/EN2mIVt/+wWU+whjq0+F/+mz/K19EOmyMHwo7zRe0lG"
    "rps0EQUcje1Qaho3N/x5e4LDBmgsrk0ObSbI9jEUWdg3PeJywiiU0sC2RSEzoSGh06QooO"
    "RbgA3OppjPsAcVX/8LxYRa+Ak6h8uvcuBjzyCWGMn0cDg+4jI0W6ryOeKB/2Kj+XMa/NnF"
    "RW3T1+JG3AdjQrBtLaE37yssn3cEZcNhp30TthQPOjZMZgcOTVq7z3zG6KJ5EBDrTMiIug"
    "WuKQAFPhHucdEcKyjgXoAXIFlJgYUnKLAFDfJvk4CaAn0pHEn8ufw9urVUM8PoaQOjrw4M"
    "Q67AmsmoQJJQLij68XPebwJIWCqLAVqfFP3dxcd/hhAwn0+9sDKES/4ZCiKO5qIh3QnK4f"
    "8czq0Z8opxjttnkIYb3QTjuCABOZnaMXwxQDuAVHbQk2FjOuUzuGx8+LAC43tFD2GGViHO"
    "DN7F+Qvbi6oa8zqBd4Jv+s5yMA/wEy+GOSO2P7TlN5i+A/XPgejZ8f1vdhrRd3fKnyHYzn"
    "NU09V6t3HzFAOtrtbMAM88MiUU2YbrMcflVcAvED2J6b5vCpKVzIRlrgoDecmagA0IyC3E"
    "eS2v0sAJOejAnSJq4hwXuU72qIzMwOfMqaiS5IGu9trGjdbtan90erdi5cbUMibMttkj8D"
    "Oid6rSM3T1XtX7Ha13LTkYUcPD37HnQx9Qr92pvcHwDmqYgykPnBFt6qryWRsOrqUxmC8P"
    "LOAj2m8p3S/hEL6JbDfsW9GbnYGu3KrXEvLGBNCb4hG91Tvta2nqEWtEW8P+QIO+U09Xca"
    "m6aKyxUl00ShcqUZWdKrFht9kciaX3ODksD0141bnR1pUboDCUHdF7pdtpKwMVqPmObGKJ"
    "WwQGW4POvaAPbLvvWDDa+gQFbUGoOYMiaKPquqZfS9jzmLcJg+cf12Dw/GMpg6JqmcHoAe"
    "A5YSb7AEYBm//pa71ijVssnWHTIiaX/pZs4vM1WI3s5SNQvgKW1co3q2czhrboIKt8XeTB"
    "Lw4qpQoPy1Kvwn+ztyrZ04wDYnNC/TMx7Ftsa3ZDC/YmzHOEGjMAaI+Y1fgpFq+J2jpRgQ"
    "8LJyAf0ALjvUNLLMeMVIYXQnfGx4cdwQ43C//+1Ti//OXy14uPl79Ck/AuFyW/rGCm0xtk"
    "l4m5jVMB0pTE/uA8PxI4U66sHKJtqOHEwcWwLktmFUgkehb/OMLdjgwPaGnUfo5sgVW7n8"
    "6d2h8od1+WtIiwzERNY2n7E5e+yxpHi06kPzqDT5K4lP7SempW2SzaDf6SxT2hgDODskcD"
    "WSk3X1wao7asm1xrQ9aXJWvWD4X1GKMU7dHdp1ekhYt7Xbd0SmSbvunDNaVfcEULb//kod"
    "ATLaDKQ3vDPEym9DN+zu1AM4BG0ZZh1M1xQpqUJprIQ4+L8Eh6QsGzwxPDXiHEXem3lLYq"
    "hwiPkfnwiDzLKIE6wkZs9mw2LbB/m1EHN591bKMSL3QEeBzVul102mXTo90e5ggoMp62hN"
    "h9YlidyGwNZx9rsNSsW5qP+Sqn4WRLEAUT3orGFiOtnGgFAdfSGVkedF04OQtejQMPvNbB"
    "1IMJplYPNdURplcGOI7Na10dfLk/bLXUfv9a8gPTxL4/ojdKpzvUVdE/sQMPj+gXRR90lO"
    "615CKPE2QfhksaZvd3YhWZdeUJBmmZQ6ZlwySD7UduwtWsCsILgROE93ytHI7zFTkc5/kc"
    "DkRETMSFcbEBxngV/V4guhHqh2ks703PA77CAtsgkyAvWeO/Af4izGk4sPiAaV4J/qxgjX"
    "519GFJFOs+3JIhnIKGj+GGrAKz58ZmqNzQLOsjQ8lEdLKzKMnZruIkK0hpa8NmV5W+6Gqr"
    "I/I9lh2LYWW4xfpmk7kzRVeVboYDzh4w9Q3YkRXspEpDJxmpOhqVDZ8Q6gbcmMNUAdesWA"
    "1sFlgW8I2QzcnV0GahxT5o0Cg50efwchdohBWauFh8QyV8PCvjNpQw4hw7brXEprTMYWRp"
    "iPFOJksDxsWe62G+8HmvS0xe8jDoOakkGjKlzANV4+FvAfGwyGWt9PaUyR8GVSf1JtWZJO"
    "Ur+HHmFKyTSbIIPFWL0GTEXhGqOR4L4sXATJ2pUWdqHFGmRpEa2AKshceNj1IJvAhxRgsu"
    "wQz3IPWG3e6qjJh9ZCvESR4r8hRSeSBrZCikc1BeTE2QNYolEefEEptISIp7+YcvCX+4hK"
    "glJUcO/i2JI1DPkjlDdBpKYCLyFiRYz3wJfkkUP/FsbHEXY4woDZwx9t6H0pTxGYwlYYtw"
    "H0aIIJDQBHoUVPkSfjKxyyVRL/jjsMuWovz8M/l9YSbG16W3bj7ePIUilZ9RKaOi3F+1pv"
    "svmuSvy6TYpSG2FVfKitPocxLWBzYR2J+f6uDxrU/gbmIP7SZ0Ux8CO8S9NhGjB2bVrzJk"
    "xOo3YoM3AnbDM1YpIyiROAnAM/lAayWsXKxIWLnIJ6zUR4EPS93UZ06PhKjaB1uutmof7M"
    "58sIfG9U68hm/s4jpQjF/l41rj0NcuXVyhA7fArxU7dsudWcI3uvuzNfVpmDc9DYMdRCol"
    "pi8EtmPnv62nbPnTgleX63xa8Oqy/NOCoi7rW/D9RwYv8Qz5syo45wRPcF/VuLpaC/GrFY"
    "hfZREnvgFL02SSB7vJmI0RLVEgKbEM1GOQ2xXWi5L9aoympnWXDL9mJ+sWGN41Vf3deQh9"
    "kvBVf1zj/9ccz9mN6xxj95e+j5x5ISucxz5lc7IoHPC25/6PBrldms4K9og5kwuM56hmpf"
    "mMkjYHYz/Xsc9Xxj5LP8xVbsiVf5mrNuFKTDjxUlVAOGp+guju5KQsjMhx0ff6yp3bKZH9"
    "O7SPPMZQwWra/mL2839DRO4t"
)
