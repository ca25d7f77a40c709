"""Plain ``nn.Module`` networks and the LightningModules that train them."""
