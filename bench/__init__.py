"""The benchmark suite (``make bench``): throughput and latency as ratios to a same-run baseline."""
