"""Strategy code the tests run in the sandbox, where more than one test file needs it."""

# Never returns: holds a sandbox slot until its timeout or a cancel kills the job.
SPIN = """
def execute_strategy(market_data, strategy_params):
    while True:
        pass
"""
