"""mdstream.kernel"""
