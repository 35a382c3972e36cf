"""How often kit's verdicts are wrong: equal cells compared with 3% lognormal noise (kit's cv on
ResNet-50), per repeat count, and how often the 95% interval holds the true ratio.

    .venv/bin/python benchmarks/verdicts.py [--trials 4000] [--cv 0.03] [--ratio 1.05]
"""

from __future__ import annotations

import argparse

from tests.simulate import RESNET50_CV, error_rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=4000)
    parser.add_argument("--cv", type=float, default=RESNET50_CV)
    parser.add_argument("--ratio", type=float, default=1.05, help="a true difference to detect")
    args = parser.parse_args()
    print(f"{args.trials} simulated comparisons per row, cv {args.cv:.1%}")
    print(f"repeats  false verdicts  coverage  |  power at {args.ratio:.2f}x  coverage")
    for n in range(2, 9):
        same = error_rates(n, cv=args.cv, trials=args.trials)
        apart = error_rates(n, cv=args.cv, trials=args.trials, true_ratio=args.ratio, seed=1)
        print(
            f"{n:>7}  {same.false_verdicts:>14.1%}  {same.coverage:>8.1%}  |  "
            f"{apart.faster:>14.1%}  {apart.coverage:>8.1%}"
        )


if __name__ == "__main__":
    main()
