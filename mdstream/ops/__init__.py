"""mdstream.ops"""
