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
    "eJztXG1v4jgQ/itRPnWlu2pLX26FTicFSLvcUlKF0F3tcopMYqjVxKGO0261t//9xiGBkB"
    "dKWKDQy5cCtsd2nscej2cm/SG7no0d//gKU8wQx3aPi4/xs1yXfsgUuRi+FDf6TZLRZDJv"
    "Igo4Gjqh1DhubvrT9gSHDdBQ/LY4tBkhx8dQZGPfYmTCiUehlAaOIwo9CxoSOp4XBZQ8BN"
    "jk3hjzO8yg4ts/UEyojb9D5/Dzmxz4mJnEFiNZDIfjIy5Ds4UqnyMe+C82mj6nyZ8nOK9t"
    "8reYyOTeHBHs2AvoTfsKy6cdQVm/325dhi3Fgw5Ny3MCl85bT575nUdnzYOA2MdCRtTNcE"
    "0AKPCJcI+LplhBAWcBnoFkzwtsPEKBI2iQ/xwF1BLoS+FI4s/ZX9HUEs1Ms6sZZk81TFMu"
    "wZrlUYEkoVxQ9OPntN85IGGpLAZoflT0o9OLdyEEns/HLKwM4ZJ/hoKIo6loSPcc5fAzg3"
    "PzDrF8nOP2KaRhoutgHBfMQZ4v7Ri+GKAtQCq76LvpYDrmd/Cz9v79EoxvFT2EGVqFOHuw"
    "F6cbthtV1aZ1Au85vsmZZWA28HeeD3NKbHdoy6+wfA31iyF6dn3/wUkienStfAnBdp+jmo"
    "7WvYqbJxhodrRGCniPkTGhyDEnzHMnvAz4OaJvYrnvmoL5SWbBMVeGgaxkRcAaBGQO4qyW"
    "V2nghhy0YaaIWjjDRaaTHSojK/C555ZUSbKhq92Weal1OtrndvdKnNyY2ubIcxzvCfgZ0G"
    "tV6Zq6eqvqvbbWrUsuRtRk+BEzH/qAeu1a7Rr9a6jxXEx54A5oQ1eVT1rfqEtDMF/uvYAP"
    "aK+pdG7CIXwLOZOwb0VvtA1duVLrEmJDAuiN8YBe6e1WXRozYg9os98zNOg78XQlj6rT2g"
    "on1Wmt8KASVemlEht2662RWHqHi8NmaMTLro2WrlwChaHsgN4qnXZLMVSg5hE5xBZTBAab"
    "RvtW0Ae23SMWjDY/QkFLEGrdQRG0UXVd0+sSZsxj6zB4crECgycXhQyKqkUGoweA54SV7A"
    "MYOWz+3dO6+Ro3XzrFpk0sLv0rOcTnK7Aa2csHoHwFLMuVb1rPpgxt0UFa+U4Qg28cVEoZ"
    "Hhalfgn/9XbV/E4zDIjDCfWPxbCvca3ZDi2YjTzmCjVmAtCMWOX4yReviNo4UYEPBycgH9"
    "Ac471NCyzHlFSKF0K3xsf7LcEOk4WP32snZ3+cfTi9OPsATcJZzkr+WMJMu2ukYE34XjKo"
    "tqCGExfnQ7somV7xkehx/OUAzXMZHtDWqPMcHV7LzPX2tdozlOubhWUvTAlRU1uw1+PSo/"
    "RpPutE+tw2Pkrip/RV66rp3TFrZ3yVxZxQwD2Tek8mshN+qbg0Rm1xM03sNVlflKxY3xfW"
    "Y4wStEezT6rQmU92VT9qQmSTztT9tf1e8J0K9/ToPtd1KqDKQnvpMUzG9BN+zlyZUoBG4Y"
    "F+1M1hQjovnWsihp5m/vzkgoJnhycG4zbEXYHLc0uVQ4SHyLp/Qgzu6PlQR9iI24njjXMM"
    "tkbUweUnHTuowG0aAR6HYa5mnXa88cHeZzIEhIB6NS8B5ALE2Sq35qZLEAUzyo7GFiMtxS"
    "4n6FUIcnHga+ZoymF7z4NfVUBrbwJa5d39lZf/F53Mh+Y5LA++3Os3m2qvV5f8wLKw7w/o"
    "pdLu9HVV9E+cgOEBvVF0o6106tIEMU6Qsx9uQVjdj8TOs1SKg7xJmX2mZc1A7+a95+FpVg"
    "bhmcAbhPdkpTj6yZI4+kk2jo6I8EtPYFxsgn1ZRr/niK6F+n7afzvT84CvsMDWiOZmJSv8"
    "18BfhJpMFw4fMM1LwZ8WrNAvjz4cieLchymZws9l+hgmZOeYPZeOh4oNzaI+UpSMRCdb81"
    "Qfb8tXvYSUltZvdFTpRlebbRFzX/SVhZXhFevBIVP/gK4qnRQH3LvH1DfhRpZzkyqMCKSk"
    "qohAOiJA6CTg5hSmErimxSpg08B6AV8L2YxcBW0aWuyDBo0SxHwOmztHIyzRxPniayrhwz"
    "kZN6GEEefYnZRLLknK7EekXIz3ZiLlMC5mE4b5zPG9KjFZyf2g500lMpAx9RioGoYfAsKw"
    "yCcstXuK5PeDqje1k6rkiOIT/DDD5KskR8wCT+UiNCmxXwjVHI4F8WJgpko+qJIPDij5IE"
    "8NbADW3Fc+D1IJvAhxSgsuwAxzkLr9TmdZksc2sxXC1Z2TnBCv+uJcBLFwtp94UKUKvGqq"
    "AHYRKRW1mwlsJmr3Mso7i9nVzs9Weff1/Kz43VdRl34DwvefPNjEd8i/K4NzRvANRklr5+"
    "crIX6+BPHzNOLEN+FoGo2yYDc8z8GIFiiQhFgK6iHIbQvrWcluNUZD0zoLN5NGOx0A6l83"
    "VP3o5N2iN6xKpv//3hczpvgqaauL/8Bj/YzVdczJfVsPhemqOW+Mv26e78Egt03TWcGMWH"
    "dyjvEc1Sw1n9G8zd7Yz8WBzBXjwpFq2F+LbiMxtmJzOXo7vowhlxCpTLjVTDixqUogHDV/"
    "g+huJY0QRuQ474XS4vBLQmT3EZfXcUtuLLZSwmra/GH28z9vCgNX"
)
