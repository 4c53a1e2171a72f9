"""HDFS namenode resolution and namenode failover on ``pyarrow.fs``.

* :class:`HdfsNamenodeResolver` turns an HA nameservice (``dfs.ha.namenodes.<ns>`` and
  ``dfs.namenode.rpc-address.<ns>.<nn>``) or the default filesystem (``fs.defaultFS``) into the namenodes'
  ``host:port`` addresses. The configuration is a Spark JVM Hadoop ``Configuration`` (or anything with ``.get``),
  or the ``hdfs-site.xml`` and ``core-site.xml`` under ``$HADOOP_HOME/etc/hadoop`` (``$HADOOP_PREFIX``,
  ``$HADOOP_INSTALL``).
* :class:`HdfsConnector` opens ``pyarrow.fs.HadoopFileSystem`` connections, the same way
  :func:`petastorm.fs_utils.get_filesystem_and_path_or_paths` does for ``hdfs://`` URLs.
* :class:`HAHdfsClient` is a ``pyarrow.fs.FileSystem`` over a list of namenodes: a call that fails with a connection
  error reconnects to the next namenode and is retried, up to ``namenode_failover.MAX_FAILOVER_ATTEMPTS`` times.
"""
from __future__ import annotations

import functools
import inspect
import logging
import os
import threading
from typing import Any, Callable, Optional, Sequence
from urllib.parse import ParseResult, urlparse

import pyarrow.fs as pafs

try:  # the site files are the user's own, but a hardened parser costs nothing when it is there
    from defusedxml import ElementTree as _ElementTree
except ImportError:  # xml.etree does not resolve external entities
    from xml.etree import ElementTree as _ElementTree

__all__ = ["HdfsNamenodeResolver", "HdfsConnector", "HdfsConnectError", "MaxFailoversExceeded",
           "namenode_failover", "failover_all_class_methods", "HAHdfsClient", "logger"]

logger = logging.getLogger(__name__)

_HADOOP_HOME_VARIABLES = ("HADOOP_HOME", "HADOOP_PREFIX", "HADOOP_INSTALL")
_SITE_FILES = ("hdfs-site.xml", "core-site.xml")  # read in this order: core-site.xml wins on a clash

# OSErrors about the path rather than the namenode: another namenode would answer the same.
_PATH_ERRORS = (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError, PermissionError)


class HdfsNamenodeResolver:
    """Resolves HDFS nameservices, and the default filesystem, to namenode addresses from a Hadoop configuration."""

    def __init__(self, hadoop_configuration: Any = None):
        """``hadoop_configuration``: a Spark JVM Hadoop ``Configuration``, a dict, or anything with ``.get(key)``;
        when None, the site files under the first set of ``$HADOOP_HOME``, ``$HADOOP_PREFIX``,
        ``$HADOOP_INSTALL`` are read (an empty configuration, with a warning, when none is set)."""
        self._hadoop_env: Optional[str] = None
        self._hadoop_path: Optional[str] = None
        if hadoop_configuration is None:
            hadoop_configuration = self._configuration_from_environment()
        self._hadoop_configuration = hadoop_configuration

    def _configuration_from_environment(self) -> dict:
        for variable in _HADOOP_HOME_VARIABLES:
            if variable in os.environ:
                self._hadoop_env, self._hadoop_path = variable, os.environ[variable]
                configuration: dict = {}
                for name in _SITE_FILES:
                    self._load_site_xml_into_dict(os.path.join(self._hadoop_path, "etc", "hadoop", name),
                                                  configuration)
                return configuration
        logger.warning("No Hadoop configuration for HDFS namenode resolution: none was given and none of %s is "
                       "set. Set HADOOP_HOME to the Hadoop installation.", ", ".join(_HADOOP_HOME_VARIABLES))
        return {}

    def _load_site_xml_into_dict(self, xml_path: str, in_dict: dict) -> None:
        """Adds the ``<property>`` name/value pairs of a Hadoop site file to ``in_dict``."""
        try:
            root = _ElementTree.parse(xml_path).getroot()
        except OSError as e:
            logger.warning("Hadoop site file %s could not be read (%s); skipped", xml_path, e)
            return
        except (_ElementTree.ParseError, ValueError) as e:  # defusedxml's refusals are ValueErrors
            logger.error("Hadoop site file %s could not be parsed: %s", xml_path, e)
            return
        for prop in root.iter("property"):
            name, value = prop.findtext("name"), prop.findtext("value")
            if name and name.strip():
                in_dict[name.strip()] = value.strip() if value is not None else None

    def _error_message(self, message: str) -> str:
        if self._hadoop_path is not None:
            return (f"{message} the Hadoop configuration in {self._hadoop_path} (environment variable "
                    f"{self._hadoop_env}). Please check your Hadoop configuration.")
        return f"{message} the supplied Hadoop configuration"

    def _default_fs(self) -> Optional[str]:
        """The configured ``fs.defaultFS``, or None."""
        return self._hadoop_configuration.get("fs.defaultFS") or None

    def resolve_hdfs_name_service(self, namespace: str) -> Optional[list]:
        """The ``host:port`` addresses of the namenodes of nameservice ``namespace``, or None when it is not a
        configured nameservice (it may be a plain host name). Raises RuntimeError when a listed namenode has no
        ``dfs.namenode.rpc-address``."""
        namenodes = self._hadoop_configuration.get("dfs.ha.namenodes." + namespace)
        if not namenodes:
            return None
        addresses = []
        for namenode in (name.strip() for name in namenodes.split(",")):
            if not namenode:
                continue
            key = f"dfs.namenode.rpc-address.{namespace}.{namenode}"
            address = self._hadoop_configuration.get(key)
            if not address:
                raise RuntimeError(self._error_message(f'Failed to get property "{key}" from'))
            addresses.append(address)
        return addresses

    def resolve_default_hdfs_service(self) -> list:
        """``[nameservice, namenode addresses]`` of ``fs.defaultFS``. Raises RuntimeError when ``fs.defaultFS`` is
        not set and IOError when it is not a configured HA nameservice."""
        default_fs = self._default_fs()
        if not default_fs:
            raise RuntimeError(self._error_message('Failed to get property "fs.defaultFS" from'))
        nameservice = urlparse(default_fs).netloc
        namenodes = self.resolve_hdfs_name_service(nameservice)
        if namenodes is None:
            raise IOError(self._error_message(f'Unable to get namenodes for default service "{default_fs}" from'))
        return [nameservice, namenodes]


class HdfsConnectError(IOError):
    """None of the namenodes accepted a connection."""


class MaxFailoversExceeded(RuntimeError):
    """An HDFS call still failed after ``max_failover_attempts`` failovers; ``failed_exceptions`` lists the errors."""

    def __init__(self, failed_exceptions: list, max_failover_attempts: int, func_name: str):
        self.failed_exceptions = failed_exceptions
        self.max_failover_attempts = max_failover_attempts
        self.__name__ = func_name
        super().__init__(f'Failover attempts exceeded maximum ({max_failover_attempts}) for action "{func_name}". '
                         f"Exceptions:\n{failed_exceptions}")

    def __reduce__(self):
        return type(self), (self.failed_exceptions, self.max_failover_attempts, self.__name__)


def _call_with_failover(client: Any, func_name: str, args: tuple, kwargs: dict, max_failover_attempts: int) -> Any:
    """Calls ``client._hdfs.<func_name>``; on a connection error, ``client._do_connect()`` moves to the next
    namenode and the call is retried. Errors about the path itself are raised at once."""
    failures: list = []
    while len(failures) <= max_failover_attempts:
        connection = client._hdfs
        try:
            return getattr(connection, func_name)(*args, **kwargs)
        except _PATH_ERRORS:
            raise
        except OSError as e:
            logger.debug("HDFS call %s failed (%s); failing over to the next namenode", func_name, e)
            reconnect = getattr(client, "_reconnect_if_current", None)
            if reconnect is not None:
                reconnect(connection)  # threads that failed on the same connection move on once, not once each
            else:
                client._do_connect()
            failures.append(e)
    raise MaxFailoversExceeded(failures, max_failover_attempts, func_name)


class namenode_failover:  # noqa: N801 - the original's name
    """Method decorator: runs the method of the same name on ``self._hdfs``, failing over to the next namenode
    (``self._do_connect()``) and retrying when it fails with a connection error (an ``OSError``)."""

    # Two failovers reach every namenode of a pair and come back to the first one.
    MAX_FAILOVER_ATTEMPTS = 3

    def __init__(self, func: Callable):
        functools.update_wrapper(self, func, ("__name__", "__doc__"), ())
        self._func_name = func.__name__

    def __get__(self, obj: Any, obj_type: Any = None) -> Any:
        if obj is None:
            return self
        return functools.partial(self.__call__, obj)

    def __call__(self, obj: Any, *args: Any, **kwargs: Any) -> Any:
        return _call_with_failover(obj, self._func_name, args, kwargs, self.MAX_FAILOVER_ATTEMPTS)


def failover_all_class_methods(decorator: Callable) -> Callable[[type], type]:
    """Class decorator factory: applies ``decorator`` to every public method of the class, inherited ones included
    (static and class methods are left alone)."""

    @functools.wraps(decorator, updated=())
    def decorate(cls: type) -> type:
        for name, method in inspect.getmembers(cls, inspect.isroutine):
            if name.startswith("_") or isinstance(inspect.getattr_static(cls, name), (staticmethod, classmethod)):
                continue
            setattr(cls, name, decorator(method))
        return cls

    return decorate


class _FailoverHandler(pafs.FileSystemHandler):
    """Holds an :class:`HAHdfsClient`'s connection; pyarrow calls it for every filesystem operation, and each one
    runs on the connected namenode with failover."""

    def __init__(self, connector_cls: Any, list_of_namenodes: Sequence[str], user: Optional[str]):
        if list_of_namenodes is None:
            raise ValueError("A list of namenodes is required")
        self._connector_cls = connector_cls
        self._list_of_namenodes = list(list_of_namenodes)
        self._user = user
        self._index_of_nn = -1  # the first connection tries the first namenode
        self._hdfs: Any = None
        self._lock = threading.Lock()
        self._do_connect()

    def __reduce__(self):
        return type(self), (self._connector_cls, self._list_of_namenodes, self._user)

    def _key(self) -> tuple:
        return self._connector_cls, tuple(self._list_of_namenodes), self._user

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, _FailoverHandler) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def _do_connect(self) -> None:
        self._index_of_nn, self._hdfs = self._connector_cls._try_next_namenode(
            self._index_of_nn, self._list_of_namenodes, user=self._user)

    def _reconnect_if_current(self, connection: Any) -> None:
        """Moves to the next namenode unless another thread already moved away from ``connection``."""
        with self._lock:
            if self._hdfs is connection:
                self._do_connect()

    def _call(self, func_name: str, *args: Any, **kwargs: Any) -> Any:
        return _call_with_failover(self, func_name, args, kwargs, namenode_failover.MAX_FAILOVER_ATTEMPTS)

    def get_type_name(self) -> str:
        return "hdfs"

    def get_file_info(self, paths):
        return self._call("get_file_info", paths)

    def get_file_info_selector(self, selector):
        return self._call("get_file_info", selector)

    def create_dir(self, path, recursive):
        self._call("create_dir", path, recursive=recursive)

    def delete_dir(self, path):
        self._call("delete_dir", path)

    def delete_dir_contents(self, path, missing_dir_ok=False):
        self._call("delete_dir_contents", path, missing_dir_ok=missing_dir_ok)

    def delete_root_dir_contents(self):
        self._call("delete_dir_contents", "/", accept_root_dir=True)

    def delete_file(self, path):
        self._call("delete_file", path)

    def move(self, src, dest):
        self._call("move", src, dest)

    def copy_file(self, src, dest):
        self._call("copy_file", src, dest)

    # pyarrow's C++ side asks for raw streams: no compression guessed from the file name.
    def open_input_stream(self, path):
        return self._call("open_input_stream", path, compression=None)

    def open_input_file(self, path):
        return self._call("open_input_file", path)

    def open_output_stream(self, path, metadata):
        return self._call("open_output_stream", path, compression=None, metadata=metadata)

    def open_append_stream(self, path, metadata):
        return self._call("open_append_stream", path, compression=None, metadata=metadata)

    def normalize_path(self, path):
        return self._call("normalize_path", path)


def _handler_attribute(name: str) -> property:
    return property(lambda self: getattr(self.handler, name), doc=f"The connection state's ``{name}``.")


@failover_all_class_methods(namenode_failover)
class HAHdfsClient(pafs.PyFileSystem):
    """A ``pyarrow.fs.FileSystem`` over the namenodes of an HA nameservice: it connects to the first namenode that
    answers and, when a call fails with a connection error, to the next one, then retries the call. Pickles as its
    arguments (it reconnects when unpickled)."""

    def __init__(self, connector_cls: Any, list_of_namenodes: Sequence[str], user: Optional[str] = None):
        """``connector_cls``: an :class:`HdfsConnector` (sub)class; ``list_of_namenodes``: ``host:port`` addresses;
        ``user``: the HDFS user (None: the login user)."""
        super().__init__(_FailoverHandler(connector_cls, list_of_namenodes, user))

    _connector_cls = _handler_attribute("_connector_cls")
    _list_of_namenodes = _handler_attribute("_list_of_namenodes")
    _user = _handler_attribute("_user")
    _index_of_nn = _handler_attribute("_index_of_nn")
    _hdfs = _handler_attribute("_hdfs")

    def __reduce__(self):
        return type(self), (self._connector_cls, self._list_of_namenodes, self._user)

    def _do_connect(self) -> None:
        """Connects to the next namenode of the list."""
        self.handler._do_connect()

    def _reconnect_if_current(self, connection: Any) -> None:
        """Moves to the next namenode unless another thread already moved away from ``connection``."""
        self.handler._reconnect_if_current(connection)


def _same_cluster(self: HAHdfsClient, other: Any) -> bool:
    """True for an HAHdfsClient over the same connector, namenodes and user."""
    return isinstance(other, HAHdfsClient) and self.handler == other.handler


# Set after the class decorator: comparing two clients is about their namenodes, not the current connection.
HAHdfsClient.equals = _same_cluster


class HdfsConnector:
    """Opens HDFS connections (``pyarrow.fs.HadoopFileSystem``); tests may subclass it to stand in for a cluster."""

    @classmethod
    def hdfs_connect_namenode(cls, url: ParseResult, driver: str = "libhdfs3", user: Optional[str] = None,
                              storage_options: Optional[dict] = None) -> pafs.FileSystem:
        """Connects to the namenode of the parsed ``url`` (``hdfs:///``: the configured default). ``driver`` is
        accepted for compatibility (pyarrow has one HDFS driver, JNI libhdfs); ``storage_options`` go to
        ``pyarrow.fs.HadoopFileSystem``. Raises OSError when the connection fails."""
        from petastorm.fs_utils import _hdfs_filesystem  # fs_utils imports this module

        if isinstance(url, str):
            url = urlparse(url)
        options = dict(storage_options or {})
        if user is not None:
            options["user"] = user
        return _hdfs_filesystem(url, options)

    @classmethod
    def connect_to_either_namenode(cls, list_of_namenodes: Sequence[str], user: Optional[str] = None) -> HAHdfsClient:
        """An :class:`HAHdfsClient` over ``list_of_namenodes``. Raises HdfsConnectError when none answers."""
        return HAHdfsClient(cls, list_of_namenodes, user=user)

    @classmethod
    def _try_next_namenode(cls, index_of_nn: int, list_of_namenodes: Sequence[str],
                           user: Optional[str] = None) -> tuple:
        """``(index, filesystem)`` of the first namenode after ``index_of_nn`` (going round the list) that accepts
        a connection. Raises HdfsConnectError when none does."""
        count = len(list_of_namenodes)
        errors = []
        for step in range(1, count + 1):
            index = (index_of_nn + step) % count
            host = list_of_namenodes[index]
            try:
                return index, cls.hdfs_connect_namenode(urlparse("hdfs://" + str(host or "default")), user=user)
            except OSError as e:  # a standby or unreachable namenode
                logger.debug("Could not connect to namenode %s: %s", host, e)
                errors.append(f"{host}: {e}")
        raise HdfsConnectError("Unable to connect to HDFS cluster! Tried namenodes " +
                               ("; ".join(errors) if errors else "(none given)"))
