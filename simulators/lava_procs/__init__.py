"""Custom Lava processes. Lava exec()s every .py file in a custom Process's folder when it looks
for ProcessModels, so this package holds nothing but them, and nothing here imports it eagerly."""
