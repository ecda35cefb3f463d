"""The device's hardware, one small base class per part with a Raspberry Pi backend and a simulated one."""
