from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        ALTER TABLE "strategy_generation_logs" ADD "ignored_requirements" JSON NOT NULL DEFAULT '[]';
        ALTER TABLE "strategy_generation_logs" ADD "interpretation" JSON NOT NULL DEFAULT '{}';"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        ALTER TABLE "strategy_generation_logs" DROP COLUMN "ignored_requirements";
        ALTER TABLE "strategy_generation_logs" DROP COLUMN "interpretation";"""


MODELS_STATE = (
    "eJztW2tv4jgU/StRPnWk3WpKHztCq5UCpJ3sUFKF0BnNsIpMYqjVxKGO0041O/99r0MCIQ"
    "9KGKDQ5Utp7Htt5xzHvr4n+SF7voPd4PgKU8wQx06Xi5/Rs1yXfsgUeRj+KTf6TZLReDwz"
    "EQUcDdzIa5SYW8HEnuDIAA3Etc3BZojcAEORgwObkTEnPoVSGrquKPRtMCR0NCsKKXkIsc"
    "X9EeZ3mEHFt3+gmFAHf4fG4fKbHAaYWcQRPdkMR/0jLoPZXFXAEQ+DF40m92nx5zEusk1f"
    "i4GM760hwa4zh96krah80hCU9Xpa6zKyFDc6sGzfDT06sx4/8zufTs3DkDjHwkfUTXFNAS"
    "jwiXFPiiZYQQFnIZ6C5MwKHDxEoStokP8chtQW6EtRT+LP2V/x0FJmltXRTaurmpYlV2DN"
    "9qlAklAuKPrxc9LuDJCoVBYdND8qxtHpxbsIAj/gIxZVRnDJPyNHxNHENaJ7hnL0m8O5eY"
    "dYMc6JfQZpGOgqGCcFM5BnUzuBLwFoA5DKHvpuuZiO+B1c1t6/X4DxrWJEMINVhLMPz+Lk"
    "ge3EVbVJncB7hm96ZDmYTfydF8Occdse2vIrTF9T/WKKlr0geHDTiB5dK18isL3nuKatd6"
    "4S8xQDzbbeyADvMzIiFLnWmPnemFcBv8D1TUz3bVMw28ls2OaqMJD3PBCwAgG5jTi/yqs0"
    "9CIONBgpojbOcZFrZIuLkR0G3PcqLkmyaaidlnWpt9v6Z61zJXZuTB1r6Luu/wT89Om1qn"
    "QsQ71Vja6md+qShxG1GH7ELIA2oF6/Vjtm7xpqfA9THnp92jBU5ZPeM+vSAMKXez/kfdpt"
    "Ku2bqIvARu44alsxGpppKFdqXUJsQAC9Ee7TK0Nr1aURI06fNntdU4e2U3dXcas6rS2xU5"
    "3WSjcqUZWdKklgt9ocSby3ODkchoa86txoGcolUBj59umt0tZaiqkCNY/IJY4YIjDYNLVb"
    "QR/Edo9YMNr8CAUtQah9B0VgoxqGbtQlzJjPVmHw5GIJBk8uShkUVfMMxjcA9wkzOQAwCt"
    "j8u6t3ilfcYu8Mmw6xufSv5JKAL8FqHC/vweIrYFm8+GbX2UygLRrILr5jxOA/DktKFR7m"
    "vX4J/9WeqtmZZhASlxMaHItuX+NYsxlaMBv6zBPLmAVAM2JX46fY/UDU2okKA9g4AfmQFg"
    "TvGi2JHDNeGV4I3Rgf7zcEOwwWfn6vnZz9cfbh9OLsA5hEo5yW/LGAGa1jZmBN5V5yqLag"
    "hhMPF0M775md8bHrcfLPHobnMtygo1P3Od68FoXr2rXaNZXrm7lpL0IJUVObi9eT0qPsbj"
    "5tRPqsmR8lcSl91Ttq9umY2plfZTEmFHLfov6ThZxUXiopTVCbf5jGzoqsz3seWN8V1hOM"
    "UrTHo08vodOc7LJ51JTLOpOpuxv7vZA7Fenp4X1h6lRAlYf20meYjOgn/Jw7MmUAjeWBXt"
    "zMfkI6K52tRAw9TfP56QkF9w53DMFthLsCh+eWKkcID5B9/4QYnNGLoY6xEacT1x8VBGyN"
    "uIHLTwZ2UUnaNAY8kWGupo22/dHenmdyBESA+jU/BeQcxPkqr+ZlSxCFMMqJ+xY9LcSuQP"
    "QqBblc+JommgrY3nHx6yBo7YygVT3df8jy/2KSed8yh9XBl7u9ZlPtdutSENo2DoI+vVS0"
    "ds9QRfvEDRnu0xvFMDWlXZfGiHGC3N1IC8LsfiROUaRSLvKmfXaZlhWF3vVnz6PdrArCU4"
    "c3CO/JUjr6yQId/SSvoyMi8tJj6BdbEF9WWd8LXFdCfTfjv62t84CviMBWUHPzngf8V8Bf"
    "SE2WB5sPhOaV4M86HtCvjj5siWLfhyFZIs9lBRgG5BSEPZeuj8oDzbI2MpQMRSMby1Qfby"
    "pXvYCUlt5rtFXpxlCbmtDc53NlUWV0xHpwySQ/YKhKO8MB9+8xDSw4kRWcpEoVgYzXQRHI"
    "KgKIcwwHoEoyWNpnN7Qv0d+b0b6gX8zGDPNpKmtZYvKeu0HPm5ImyYj6DMIZhh9CwrB4Q6"
    "jS01PmvxtUvakn6SB3lu8j+yl8LSN3TlPJ1XKuGbdfSL7uT7T8Yqr1ICce5MQ9khOLloE1"
    "wFr4EddeLgIvQpxZBedghjFInV67vUi23aT+GM3uArkxmfXl6qKYOJuXEg/i36uKf9hDpF"
    "Iefuqwnjz8yyhv72u287NlvmY7Pyv/mk3UZd9pDoInHx7iOxTcVVKUso5vUPeonZ8vhfj5"
    "AsTPs4iTwIKtaTjMg93wfRcjWrKApNwyUA/Ab1NYT0u2u2I0dL09dzJpaNmUbu+6oRpHJ+"
    "/mk4yH12P/v+fFXCi+zIto85/kr/4O2irh5K7Nh9IX0Aq+AX3dN/f2BrlNhs4KZsS+kwuC"
    "57hmYfiMZjY7Ez+XSj6F4XOB0hMvDbsb0a1F6SkPl+PvXasEcimXQwi3XAgnHqoKCMfmbx"
    "DdjbwYBD1yXPSJWLn8knLZvuLyOmnJtWkrFaKm9W9mP/8D6v2tkg=="
)
