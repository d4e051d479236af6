"""mdstream.inputs"""
