"""The benchmark: a realistic load on Reelwire and on its peers, measured in one run."""
