"""IEC 62056-21 optical-port readout (mode C): frames, OBIS data lines, the serial exchange."""
