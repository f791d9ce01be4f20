"""What drives Locust from outside: one command per search (HTTP, MQTT) and the capacity study over both."""
