"""Strategy code the tests run in the sandbox, where more than one test file needs it."""

# Never returns: holds a sandbox slot until its timeout or a cancel kills the job.
SPIN = """
def execute_strategy(market_data, strategy_params):
    while True:
        pass
"""

# Passes validation (so it can be stored and run over the API), yet counts far beyond any
# timeout: every run of it lasts exactly the run timeout. A user hogging the sandbox.
SPIN_STORABLE = '''
def execute_strategy(market_data, strategy_params):
    """Counts for as long as it is let: every run ends at the run timeout."""
    total = 0
    for step in range(strategy_params.get("steps", 10**12)):
        total += step
    return {"action": "hold", "confidence": 0.5, "reason": str(total), "metadata": {}}
'''
