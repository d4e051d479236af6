"""mdstream.jobs"""
