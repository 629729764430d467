"""Service proxy: model (snapshot of service ports), tracker (informers), runner
(coalescing sync loop), nftrules/nftables/nftdelta (pure rule rendering, partial
syncs) + nftlib/nftapply (libnftables per node, the nft shell),
service (one runner per node), metrics, dump."""
