"""Service proxy: model (snapshot of service ports), tracker (informers), runner
(coalescing sync loop), nftables (pure rule rendering) + nftapply (the nft shell),
service (one runner per node), metrics, dump."""
