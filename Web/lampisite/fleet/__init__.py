"""The fleet app: measures from sensor fleets (water-quality buoys and the like), stored as they arrive over MQTT."""
