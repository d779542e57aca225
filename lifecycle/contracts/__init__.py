"""What crosses the wire: inbound CloudEvents, outbound lead events, topics, schema documents."""
