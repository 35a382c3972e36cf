#!/bin/sh
# kit session 20261201T120000Z: node c5-1, runs 1, 2, 3, 4, 5, 6, 7, 8
exec /opt/kit/.venv/bin/python -m kit _worker /shared/results/20261201T120000Z/slurm/c5-1/batch-0001/share.json
