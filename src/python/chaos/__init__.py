"""The storm's tools: the invariants a quiesced marketplace must hold."""
