// Package hosts reads the Ansible inventory of an mqops deployment and
// checks its hosts over SSH: is the service running, which version is
// installed, how full is the store's disk, what did the store log as
// errors, and do the name servers list every broker. It is the library
// behind "mqadmin hosts check"; the Ansible rollout reads the same
// inventory, so the names below are a contract between the two.
//
// # Inventory files
//
// An inventory is a directory such as inventory/prod/ holding exactly one
// of hosts.yml, hosts.yaml, hosts.ini or hosts (INI), plus optional
// group_vars/<group>.yml and host_vars/<host>.yml (.yaml, no extension, or
// a directory of .yml/.yaml files, as Ansible allows); or a single
// inventory file, with group_vars/ and host_vars/ looked up beside it.
// Files ending in .yml, .yaml or .json are read as YAML inventories,
// anything else as INI.
//
// Groups:
//
//	mqops_namesrv          name servers
//	mqops_broker           brokers; its children are
//	  mqops_broker_master  the masters (brokerId 0)
//	  mqops_broker_slave   the slaves
//
// mqops_broker_master and mqops_broker_slave, when present, must be
// children of mqops_broker so that mqops_broker's variables reach them.
//
// Host variables, with their defaults:
//
//	ansible_host               inventory host name   address SSH and the checks use
//	ansible_port               22                    SSH port
//	ansible_user               (the SSH user option) SSH user
//	mqops_bin_dir              /opt/mqops/bin        mqbroker and mqnamesrv
//	mqops_log_dir              /var/log/mqops        logDir (storeerror.log)
//	mqops_broker_store_dir     /var/lib/mqops/store  storePathRootDir
//	mqops_broker_listen_port   10911                 listenPort of the broker
//	mqops_namesrv_listen_port  9876                  listenPort of the name server
//	mqops_broker_ip            ansible_host          brokerIP1, the registered address
//	mqops_broker_name          (unset)               brokerName
//	mqops_broker_id            (unset)               brokerId
//
// Precedence follows Ansible's, lowest first: group variables set in the
// inventory file (the all group, then parents before children, siblings by
// name), group_vars/all, the other group_vars files in the same group
// order, variables set on the host in the inventory file, host_vars.
//
// # Supported syntax
//
// The subset real inventories use. INI: [group], [group:vars] and
// [group:children] sections; host lines "name key=value ..." with
// shell-style quoting and "#" comments; "name:port"; ';' and '#' comment
// lines. Values in [group:vars] are taken literally (surrounding quotes
// removed). YAML: nested groups with hosts, vars and children keys,
// anchors and aliases. Every value is read as a string.
//
// Rejected with the file and line: host ranges (web[01:20]), unknown INI
// section kinds, unknown YAML keys in a group, YAML merge keys (<<), and —
// only in the variables above, which mqadmin must use as they are — Jinja2
// templates ({{ }}), vault-encrypted values, lists and mappings. Other
// variables are carried along and never interpreted.
package hosts
