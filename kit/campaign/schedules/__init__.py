"""Schedules: which runs of a session's plan go next, read from the runs so far alone (so a
resumed session makes the same decisions again). ``budget``: what a budget allows, and the fixed
schedule; ``race``: racing cells, dropping the significantly slower; ``adaptive``: repeats until
each verdict is clear; ``model``: Optuna's TPE proposals; ``tuning``: how ``kit tune`` picks one."""
