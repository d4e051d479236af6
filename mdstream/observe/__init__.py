"""mdstream.observe"""
