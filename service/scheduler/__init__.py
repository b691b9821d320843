"""Plan, schedule, execute: which rows of which requests share each pass on a device, and running it.

policy.py chooses the rows of the next chunk (pure bookkeeping), executor.py runs a chunk on the device,
device.py is the per-device thread that joins them to the asyncio side, inline.py runs plans synchronously.
"""
