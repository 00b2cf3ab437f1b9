from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        ALTER TABLE "strategy_generation_logs" ADD "repair_rounds" INT NOT NULL DEFAULT 0;"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        ALTER TABLE "strategy_generation_logs" DROP COLUMN "repair_rounds";"""


MODELS_STATE = (
    "eJztXG1z4jgS/isuf7m5qrnUhCSzW7mtrTLgZLghMGUgu7XDlUvYAlSxJY8sT5Kanf9+LW"
    "Ow8QvBBAhw/pJgSS3ZzyO3Wt0t/1BdZmPHP7vFFHMksN0T8t/kWb1WfqgUuRh+FDd6r6jI"
    "8+ImskCgkRNKTebNTX/WnuCwARrJa0tAmzFyfAxFNvYtTjxBGIVSGjiOLGQWNCR0EhcFlH"
    "wLsCnYBIsp5lDx9b9QTKiNn6BzuPyqBj7mJrHlSBbH4fhIqNBsqcoXSAT+i41mz2mKZw/n"
    "tU1eyxvxHswxwY69hN6sr7B81hGUDQat5k3YUj7oyLSYE7g0bu09iymji+ZBQOwzKSPrFr"
    "gmAJT4RLjPi2ZYQYHgAV6AZMcFNh6jwJE0qL+NA2pJ9JVwJPnn8vfo1hLNTLPT7Zs9vW+a"
    "agnWLEYlkoQKSdGPn7N+Y0DCUlUO0PikGe8uPv4zhID5YsLDyhAu9WcoiASaiYZ0xyiH/z"
    "M4N6aI5+M8b59CGm50E4znBTHI8dSewzcHaAeQqi56Mh1MJ2IKl7UPH1ZgfK8ZIczQKsSZ"
    "wbs4e2E7UVVtVifxjvFN3lkG5j5+Evkwp8T2h7b6BtO3r//Zlz27vv/NSSL67k77MwTbfY"
    "5q2t3O7bx5goFGu1tPAc84mRCKHNPjzPVEGfBzRE9iuu+bgngls2CZK8NAVrIiYAMCMgtx"
    "VsvrNHBDDlpwp4haOMNFppM9KiMr8AVzS6oktW/onaZ50223u3+0Ordy5cbUNsfMcdgj8D"
    "Okd7rWMQ39Xjd6rW7nWnExoibH3zH3oQ+o797pnf7gDmqYi6kI3CGtG7r2uTvoXysjMF8e"
    "WCCGtNfQ2l/CIXwLOV7Yt2bUW31Du9WvFcRHBNCb4CG9NVrNa2XCiT2kjUGv34W+E09Xcq"
    "m6qK2xUl3UChcqWZWeKnPDbrM5Mpfe4+SwORqLsnOjaWg3QGEoO6T3WrvV1Po6UPMdOcSW"
    "twgMNvqte0kf2HbfsWS08QkKmpJQawpF0EY3jK5xrWDOGd+EwfOPazB4/rGQQVm1zGD0AP"
    "CcMJN9ACOHzf/0up18jZsvnWLTJpZQ/lYc4os1WI3s5SNQvhKW1co3rWdThrbsIK18PcTh"
    "lwCVUoaHZalX4b/ZWxXvaUYBcQSh/pkc9i22NbuhBfMx465UYyYAzYlVjp988YqorRMV+L"
    "BwAvIBzTHeW7TAckxJpXghdGd8fNgR7HCz8O9ftfPLXy5/vfh4+Ss0Ce9yUfLLCmZanX56"
    "mZjZOCUgTUjsD87zI4Ez4crKINqEGkFcnA/rsmRagUSiZ/MfR7jbUeEB7S51niNbYNXup3"
    "Wn9/ra3ZclLSItM1lTW9r+zEvfpY2jRSfKH63+J0VeKn91O3pa2Sza9f9S5T2hQDCTskcT"
    "2Qk337x0jtqybvLsDVlflqxYPxTW5xglaI/uPrkiLVzc67qlEyLb9E0frin9gitaevvHD7"
    "meaAlVFtobxjGZ0M/4ObMDTQEaRVsGUTfHCWlcGmsijh4X4ZHkhIJnhyeGvUKIu9ZraE1d"
    "DREeIevhEXHbLIA6wkZu9hw2ybF/61EHN58N7KACL3QE+DyqdbvotM0mR7s9zBCQZzxtCb"
    "H72LA6kdkazj5WY4lZtzQfs1VuzU2XIAomvB2NLUdaOdFyAq6FM7I46Lpwcua8GgceeK2C"
    "qQcTTC0faqoiTK8McByb17o8+Gpv0Gjovd614geWhX1/SG+0Vntg6LJ/4gQcD+kXzei3tP"
    "a14iEuCHIOwyUNs/s7sfPMuuIEg6TMIdOyYZLB9iM34WpWBuGFwAnCe75WDsf5ihyO82wO"
    "ByIyJuLBuNgEY7yMfs8R3Qj1wzSW96bnAV9pgW2QSZCVrPDfAH8Z5jRdWHzANC8Ff1qwQr"
    "88+rAkynUfbsmUTkHTx3BDdo7Zc+MwVGxoFvWRomQsO9lZlORsV3GSFaQ0u4N6W1e+GHqj"
    "JfM9lh2LYWW4xfrmkJkzxdC1dooDwR4w9U3YkeXspApDJympKhqVDp8Q6gXCnMFUAte0WA"
    "VsGlgWiI2QzchV0KahxT5o0Cg50RfwcudohBWaOF98QyV8PCvjNpQwEgK7XrnEpqTMYWRp"
    "yPFOJkuDYw8RbnIW5FokhXomI1fpmezaKDD3OBaLcMK6cz4reRgz/6Tyk8iEMg5anONvAe"
    "FYpgmXUkxF8odB1UkpqSpJp1hpHWe6xjpJOouYXrngV0rsFVGw4zHOXox5VUkwVRLMESXB"
    "5KmBLcCae5L7KJXAixCntOASzHAPSmfQbq9KNtpHIsg8f2ZFCkgixWaN5I9kes+LWR9ql2"
    "JFhpCxwsYKUua9/MNXZKhBQdRW4tMc/1bk6bJnxZoiOgklMJEpIQqsZ74CvxSKn2anmRIc"
    "7mKMIaWBO8L8fShNmZjCWAq2ifBhhAgCBY2hR0mVr+AnC3tCkfWSP4F9oURHH87U97lJLl"
    "+X3rrZeLPslETqS6lklWJX4Jqe1WiSvy5JZZeG2FZ2jysO+s9IWB/YWGB/W/ODx7c63LyJ"
    "PbSbqFh1vu4Q99pEjh5YZT94kRKr3ogN3gjYDU9ZqWSrWOIkAE+lWq2VC3SxIhfoIpsLVJ"
    "2yPix1Ux3nPRKiKh9ssdqqfLA788EeGtc78Rq+sYvrQDF+lY9rjfN0u3RxhQ7cHL/W3LFb"
    "7MySvtHdH1uqDhq96UEj7CJSKud/IbAdO/9tPWXLX228ulznq41Xl8VfbZR1ad+C7z8yeI"
    "mnyJ+WwTkjeIL7qtrV1VqIX61A/CqNOPFNWJrG4yzYdcYcjGiBAkmIpaAegdyusF6U7Fdj"
    "1Lvd9pLhV2+l3QKDu7puvDsPoY9z6arvlvz/muMZu3GdLwT4S5+eTr2QJY66n7I5mRcOeN"
    "tPKhwNcrs0nTXMiTVVc4znqGal+YziNgdjP1exz1fGPgu/eVZsyBV/9Kwy4QpMOPlSlUA4"
    "an6C6O7kEDKMKHDepxCLndsJkf07tI88xlDCatr+Yvbzf1K+W+U="
)
