"""LAMPI devices over MQTT: the device model, the event loop the devices of a process share (and what they share
on Locust's environment), the paho speed-ups the loop runs with, the broker address, the $SYS logger."""
