"""The benchmark: Reelwire measured beside its peers on one machine, in one run."""

PEERS = ("naive", "centrifugo", "strapi")
