"""The insurers' side (快速理赔): their directory, the events pushed to them, and the links they open."""
