"""An Odoo server process started by a test, with its log file."""

import signal
import subprocess


class ServerProcess:
    """What a started server shares: ``process``, ``log_path`` and the open
    log ``_log``, set by the subclass that starts it."""

    def output(self):
        return self.log_path.read_text()

    def stop(self):
        """SIGTERM (Odoo's graceful stop), then SIGKILL if it hangs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode
