"""Human hand-off: tickets, the agents' queue, and the relay between customers and agents."""
