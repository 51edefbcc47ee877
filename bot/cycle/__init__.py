"""One iteration of the generate → check → score → guide cycle: the loop, its steps, the episode around it, the baseline and verdict, reward and policy."""
