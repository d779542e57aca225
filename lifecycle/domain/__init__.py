"""The domain's values, pure and without I/O: vocabulary, facts, identity keys, instants, money."""
