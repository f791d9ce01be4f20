"""LAMPI devices over MQTT: the event loop the devices of a process share, the device model, the $SYS logger."""
