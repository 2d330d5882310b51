"""Edge SDK for systems that publish to the hub (kombu)."""
