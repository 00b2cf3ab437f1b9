from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        ALTER TABLE "strategy_generation_logs" ADD "input_tokens" INT NOT NULL DEFAULT 0;
        ALTER TABLE "strategy_generation_logs" ADD "output_tokens" INT NOT NULL DEFAULT 0;
        ALTER TABLE "strategy_generation_logs" ADD "estimated_cost_usd" DOUBLE PRECISION;"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        ALTER TABLE "strategy_generation_logs" DROP COLUMN "input_tokens";
        ALTER TABLE "strategy_generation_logs" DROP COLUMN "output_tokens";
        ALTER TABLE "strategy_generation_logs" DROP COLUMN "estimated_cost_usd";"""


MODELS_STATE = (
    "eJztnP9v2jgUwP+VKD9t0l210i83odNJAdIuN0qqELpp4xSZxIDVxGGJ067a7X+/55BAvl"
    "LCgEIvvxSw/Wzn85zn5/eS/hAd18K2f3KNKfYQw1af8Y/Jk9gUfogUORi+lDf6TRDRbLZs"
    "wgsYGtmh1CRubvjz9gSHDdCI/zYZtBkj28dQZGHf9MiMEZdCKQ1smxe6JjQkdLIsCij5Fm"
    "CDuRPMptiDiq//QDGhFv4OncPPr2LgY88gFh/J9HA4PmIiNEtV+QyxwH+20fw6DfY0w0Vt"
    "k7/5RGb3xphg20rRm/cVls87grLBQOlchS35hY4M07UDhy5bz57Y1KWL5kFArBMuw+sWXB"
    "MAOZ+Ie1w0ZwUFzAvwApK1LLDwGAU2V4P45zigJqcvhCPxP+d/RVNLNDOMnqobfVk3DLGC"
    "1kyXcpKEMq6iHz/n/S6BhKUiH6D9QdLenF2+DRG4Ppt4YWWIS/wZCiKG5qKhupeUw88c5/"
    "YUecWc4/YZ0jDRTRjHBUvIy6Ud44sB7QCp6KDvho3phE3hZ+PduxWM7yQtxAytQs4u3Ivz"
    "G7YXVTXmdZz3km9yZjnMOv7OijFnxPZHW3yB5avLn3Xes+P73+wk0Tc30ucQtvMU1XTV3n"
    "XcPKGBdldtZcC7HpkQimxj5rnOjFWBXyD6Kpb7vlWw3MlM2OaqaCAvWStgAwXkNuK8lZdp"
    "4IQ6UGCmiJo4p4tcJ3s0RmbgM9epaJJEXZN7HeNK7XbVT0rvmu/cmFrG2LVt9xH0M6Q3st"
    "QzNPlO1vqK2msKDkbU8PAD9nzoA+rVG7mnD26gxnUwZYEzpC1Nlj6qA70pjMB9uXcDNqT9"
    "ttS9DYfwTWTPwr4lraXomnQtNwXkjQjQm+AhvdaUTlOYeMQa0vagr6vQd+LqKm5VZ401dq"
    "qzRulGxauySyV27DZbI7H0HheH5aExq7o2Opp0BSoMZYf0TuoqHUmXQTUPyCYWnyJosK0r"
    "d1x94Ns9YK7R9gco6HCFmlMogjaypqlaU8Ce53qbaPD0cg0Nnl6WapBXpTUYXQBcJ6xkH2"
    "AUaPPvvtortrjF0hltWsRkwr+CTXy2hlYjf/kIjC/Hstr4Zu1sxtHmHWSN7wx58I2BSami"
    "h7TUL/Hf7K5anmlGAbEZof4JH/YljjW7UQv2xq7ncDNmAGiPmNX0UyxeK2rrigp82DiBfE"
    "ALnHeFlniOGamMXgjdmT7e7Qg7TBY+fm+cnv9x/v7s8vw9NAlnuSj5Y4VmlJ6ewZqIveSo"
    "dqCGEQcXo01LZld8JHoSfzlC91yEC7RUaj9Fm9cqd125kfu6dHObWvbcleA1jZS/Hpe+ye"
    "7mi06ET4r+QeA/hS9qT87eHYt2+heRzwkFzDWo+2ggKxGXiktjaumbaWZtqPW0ZK31Q9F6"
    "zCih9mj2SRO6iMmuG0dNiGwzmHq4vt8zsVMenh7fF4ZOOao82ivXw2RCP+Kn3JEpAzRKDw"
    "yibo4T6bJ0aYk89LiI5ycXFFw7XDE4tyF3CQ7PHVkMCY+Qef+IPDijF6OO2PDTie1OChy2"
    "VtTB1UcN26gkbBoBj9Mw14tOu+7kaM8zOQWEQN2GmwCZQpyvchpOtgRRcKOsaGw+0kp2BU"
    "mvUsjlia9FoKlA2wee/KoTWgeT0Koe7q+j/L8YZD62yGF1+GJ/0G7L/X5T8APTxL4/pFeS"
    "0h1oMu+f2IGHh/RW0nRF6jaFGfIYQfZhhAVhdT8Qq8hTKU/yJmUOWS0bJnq3Hz0Pd7MqhB"
    "cCrxDv6Vp59NMVefTTfB4dER6XnsG42AD/sop9LxDdiPph+n97s/PAl3tgG2Rz85I1/w34"
    "81ST4cDmA655JfxZwZp+dfqwJfJ9H6Zk8DiX4WOYkFXg9lzZLip3NMv6yKhkzDvZWaT6ZF"
    "ex6hVK6aiDVlcWbjW5rfCcezpWFlaGR6xvNpnHBzRZ6mZ0wNx7TH0DTmQFJ6nSjEBGqs4I"
    "ZDMChM4CZswxVeCaFavBZsG6AduIbE6uRptFi32woNEDYj6Dm7vAIqywxMXiGxrh49kZt2"
    "GEEWPYmVV7uCQpcxiZcj7eq8mU1yndcrtznMm9dVK6i3B5tbhyRuwXAszHY/eeDSfXKdM6"
    "ZXpEKdMiM7AFrIUvqh2lEXgWccYKpjDDHITeoNtdlZreZY41XN0FKdV41ZdnUPnC2X26tE"
    "5wvmiCEzuIVMo1LAS2k2t4nvLeMg2Ni/N13ti7OC9/Y4/XZZ/b9v1HF27iKfKnlbJmWcFX"
    "mNtpXFysRfxiBfGLLHHiG7A1jcd52C3XtTGiJQYkIZZBPQK5XbFelOzXYrRUtZs6mbSUbN"
    "h6cNOStTenb9Nn+PoR4P/veTHniq/zsF363w5s/pzdJu7koa2H0ofsCt5zfdmnE4+G3C5d"
    "Zwl7xJyKBc5zVLPSfUbLNgfjP5enX9bMZkWm4XA9uq1kBsrd5eid3iqOXEKkduHWc+H4TV"
    "WBcNT8FdLdycNPMCLDRa/BladcEiL7z7i8TFhya7mVCl7T9jezn/8BAVryow=="
)
