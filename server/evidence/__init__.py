"""Evidence that leaves the police: masked copies of stills, photos, clips and recordings."""
