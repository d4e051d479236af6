"""mdstream.contract"""
