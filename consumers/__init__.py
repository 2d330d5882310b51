"""Edge SDK for systems that consume their inbox from the hub (kombu)."""
