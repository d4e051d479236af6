"""mdstream.engine"""
