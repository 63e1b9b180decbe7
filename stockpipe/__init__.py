"""stockpipe: a real-time stock analytics pipeline that runs the same on an AWS emulator and on AWS.

Kept import-free: this file ships inside the Lambda zips.
"""

__version__ = "0.1.0"
