"""Check that the default backoff draws the same delays as discord.py's.

Not a test: discord.py is installed only in the bench environment
(``pip install -e '.[bench]'``). Both backoffs are fed the same seeded random
stream; the 15 delays must be identical. Exits 1 if they differ.

    python bench/check_backoff_compat.py
"""

from __future__ import annotations

import random
import sys
import warnings

from supervised_loops import ExponentialBackoff


def main() -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # discord.py imports audioop
        from discord.backoff import ExponentialBackoff as DiscordBackoff

    theirs = DiscordBackoff()
    theirs._randfunc = random.Random(7).uniform  # discord's own stream is OS-seeded
    ours = ExponentialBackoff().tracker(random.Random(7))
    mine = [ours.failure(now=0.0) for _ in range(15)]
    reference = [theirs.delay() for _ in range(15)]
    same = mine == reference
    print(f"default backoff identical to discord.py's over 15 failures: {'yes' if same else 'NO'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
