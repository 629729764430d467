"""Column descriptions of the kube-apiserver printers (Kubernetes 1.32).

kube-apiserver fills TableColumnDefinition.description from the API types' field docs
(SwaggerDoc). The texts below are those field docs as the official 1.32 client publishes
them; kubectl never prints them, but API clients that render tables do. Pure data.
"""
from __future__ import annotations

# fmt: off
META_NAME = (
    "Name must be unique within a namespace. Is required when creating resources, although "
    "some resources may allow a client to request the generation of an appropriate name "
    "automatically. Name is primarily intended for creation idempotence and configuration "
    "definition. Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
)
META_CREATED = (
    "CreationTimestamp is a timestamp representing the server time when this object was "
    "created. It is not guaranteed to be set in happens-before order across separate "
    "operations. Clients may not set this value. It is represented in RFC3339 form and is in "
    "UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
)
POD_IP = (
    "podIP address allocated to the pod. Routable at least within the cluster. Empty if not "
    "yet allocated."
)
POD_NODE = (
    "NodeName indicates in which node this pod is scheduled. If empty, this pod is a "
    "candidate for scheduling by the scheduler defined in schedulerName. Once this field is "
    "set, the kubelet for this node becomes responsible for the lifecycle of this pod. This "
    "field should not be used to express a desire for the pod to be scheduled on a specific "
    "node. https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename"
)
POD_NOMINATED = (
    "nominatedNodeName is set only when this pod preempts other pods on the node, but it "
    "cannot be scheduled right away as preemption victims receive their graceful termination "
    "periods. This field does not guarantee that the pod will be scheduled on this node. "
    "Scheduler may decide to place the pod elsewhere if other nodes become available sooner. "
    "Scheduler may also decide to give the resources on this node to a higher priority pod "
    "that is created after preemption. As a result, this field may be different than "
    "PodSpec.nodeName when the pod is scheduled."
)
POD_READINESS_GATES = (
    "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready "
    "when all its containers are ready AND all conditions specified in the readiness gates "
    "have status equal to \"True\" More info: "
    "https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates"
)
RC_SPEC_REPLICAS = (
    "Replicas is the number of desired replicas. This is a pointer to distinguish between "
    "explicit zero and unspecified. Defaults to 1. More info: "
    "https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller#what-is-a-replicationcontroller"
)
RC_STATUS_REPLICAS = (
    "Replicas is the most recently observed number of replicas. More info: "
    "https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller#what-is-a-replicationcontroller"
)
RC_READY = "The number of ready replicas for this replication controller."
RC_SELECTOR = (
    "Selector is a label query over pods that should match the Replicas count. If Selector "
    "is empty, it is defaulted to the labels present on the Pod template. Label keys and "
    "values that must match in order to be controlled by this replication controller, if "
    "empty defaulted to labels on Pod template. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors"
)
RS_SPEC_REPLICAS = (
    "Replicas is the number of desired replicas. This is a pointer to distinguish between "
    "explicit zero and unspecified. Defaults to 1. More info: "
    "https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/#what-is-a-replicationcontroller"
)
RS_STATUS_REPLICAS = (
    "Replicas is the most recently observed number of replicas. More info: "
    "https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/#what-is-a-replicationcontroller"
)
RS_READY = (
    "readyReplicas is the number of pods targeted by this ReplicaSet with a Ready Condition."
)
RS_SELECTOR = (
    "Selector is a label query over pods that should match the replica count. If the "
    "selector is empty, it is defaulted to the labels present on the pod template. Label "
    "keys and values that must match in order to be controlled by this replica set. More "
    "info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors"
)
DS_DESIRED = (
    "The total number of nodes that should be running the daemon pod (including nodes "
    "correctly running the daemon pod). More info: "
    "https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/"
)
DS_CURRENT = (
    "The number of nodes that are running at least 1 daemon pod and are supposed to run the "
    "daemon pod. More info: "
    "https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/"
)
DS_READY = (
    "numberReady is the number of nodes that should be running the daemon pod and have one "
    "or more of the daemon pod running with a Ready Condition."
)
DS_UPDATED = "The total number of nodes that are running updated daemon pod"
DS_AVAILABLE = (
    "The number of nodes that should be running the daemon pod and have one or more of the "
    "daemon pod running and available (ready for at least spec.minReadySeconds)"
)
POD_NODE_SELECTOR = (
    "NodeSelector is a selector which must be true for the pod to fit on a node. Selector "
    "which must match a node's labels for the pod to be scheduled on that node. More info: "
    "https://kubernetes.io/docs/concepts/configuration/assign-pod-node/"
)
DS_SELECTOR = (
    "A label query over pods that are managed by the daemon set. Must match in order to be "
    "controlled. If empty, defaulted to labels on Pod template. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors"
)
SVC_TYPE = (
    "type determines how the Service is exposed. Defaults to ClusterIP. Valid options are "
    "ExternalName, ClusterIP, NodePort, and LoadBalancer. \"ClusterIP\" allocates a "
    "cluster-internal IP address for load-balancing to endpoints. Endpoints are determined "
    "by the selector or if that is not specified, by manual construction of an Endpoints "
    "object or EndpointSlice objects. If clusterIP is \"None\", no virtual IP is allocated "
    "and the endpoints are published as a set of endpoints rather than a virtual IP. "
    "\"NodePort\" builds on ClusterIP and allocates a port on every node which routes to the "
    "same endpoints as the clusterIP. \"LoadBalancer\" builds on NodePort and creates an "
    "external load-balancer (if supported in the current cloud) which routes to the same "
    "endpoints as the clusterIP. \"ExternalName\" aliases this service to the specified "
    "externalName. Several other fields do not apply to ExternalName services. More info: "
    "https://kubernetes.io/docs/concepts/services-networking/service/#publishing-services-service-types"
)
SVC_CLUSTER_IP = (
    "clusterIP is the IP address of the service and is usually assigned randomly. If an "
    "address is specified manually, is in-range (as per system configuration), and is not in "
    "use, it will be allocated to the service; otherwise creation of the service will fail. "
    "This field may not be changed through updates unless the type field is also being "
    "changed to ExternalName (which requires this field to be blank) or the type field is "
    "being changed from ExternalName (in which case this field may optionally be specified, "
    "as describe above).\n\nValid values are \"None\", empty string (\"\"), or a valid IP "
    "address. Setting this to \"None\" makes a \"headless service\" (no virtual IP), which "
    "is useful when direct endpoint connections are preferred and proxying is not "
    "required.\n\nOnly applies to types ClusterIP, NodePort, and LoadBalancer. If this field "
    "is specified when creating a Service of type ExternalName, creation will fail. This "
    "field will be wiped when updating a Service to type ExternalName. More info: "
    "https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies"
)
SVC_EXTERNAL_IPS = (
    "externalIPs is a list of IP addresses for which nodes in the cluster will also accept "
    "traffic for this service.\n\nThese IPs are not managed by Kubernetes.\n\nThe user is "
    "responsible for ensuring that traffic arrives at a node with this IP.\n\nA common "
    "example is external load-balancers that are not part of the Kubernetes system."
)
SVC_PORTS = (
    "The list of ports that are exposed by this service. More info: "
    "https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies"
)
SVC_SELECTOR = (
    "Route service traffic to pods with label keys and values matching this selector. If "
    "empty or not present, the service is assumed to have an external process managing its "
    "endpoints, which Kubernetes will not modify. Only applies to types ClusterIP, NodePort, "
    "and LoadBalancer. Ignored if type is ExternalName. More info: "
    "https://kubernetes.io/docs/concepts/services-networking/service/"
)
EP_SUBSETS = (
    "The set of all endpoints is the union of all subsets. Addresses are placed into subsets "
    "according to the IPs they share. A single address with multiple ports, some of which "
    "are ready and some of which are not (because they come from different containers) will "
    "result in the address being displayed in different subsets for the different ports. No "
    "address will appear in both Addresses and NotReadyAddresses in the same subset. Sets of "
    "addresses and ports that comprise a service."
)
NODE_KUBELET_VERSION = "Kubelet Version reported by the node."
NODE_ADDRESSES = (
    "List of addresses reachable to the node. Queried from cloud provider, if available. "
    "More info: https://kubernetes.io/docs/reference/node/node-status/#addresses Note: This "
    "field is declared as mergeable, but the merge key is not sufficiently unique, which can "
    "cause data corruption when it is merged. Callers should instead use a full-replacement "
    "patch. See https://pr.k8s.io/79391 for an example. Consumers should assume that "
    "addresses can change during the lifetime of a Node. However, there are some exceptions "
    "where this may not be possible, such as Pods that inherit a Node's address in its own "
    "status or consumers of the downward API (status.hostIP)."
)
NODE_OS_IMAGE = (
    "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy))."
)
NODE_KERNEL = "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64)."
NODE_RUNTIME = (
    "ContainerRuntime Version reported by the node through runtime remote API (e.g. "
    "containerd://1.4.2)."
)
EV_LAST = "The time at which the most recent occurrence of this event was recorded."
EV_TYPE = "Type of this event (Normal, Warning), new types could be added in the future"
EV_REASON = (
    "This should be a short, machine understandable string that gives the reason for the "
    "transition into the object's current status."
)
EV_OBJECT = "The object that this event is about."
EV_FIELD_PATH = (
    "If referring to a piece of an object instead of an entire object, this string should "
    "contain a valid JSON/Go field access statement, such as "
    "desiredState.manifest.containers[2]. For example, if the object reference is to a "
    "container within a pod, this would take on a value like: \"spec.containers{name}\" "
    "(where \"name\" refers to the name of the container that triggered the event) or if no "
    "container name is specified \"spec.containers[2]\" (container with index 2 in this "
    "pod). This syntax is chosen only to have some well-defined way of referencing a part of "
    "an object."
)
EV_SOURCE = "The component reporting this event. Should be a short machine understandable string."
EV_MESSAGE = "A human-readable description of the status of this operation."
EV_FIRST = (
    "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)"
)
EV_COUNT = "The number of times this event has occurred."
PV_CAPACITY = (
    "capacity is the description of the persistent volume's resources and capacity. More "
    "info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#capacity"
)
PV_ACCESS_MODES = (
    "accessModes contains all ways the volume can be mounted. More info: "
    "https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes"
)
PV_RECLAIM = (
    "persistentVolumeReclaimPolicy defines what happens to a persistent volume when released "
    "from its claim. Valid options are Retain (default for manually created "
    "PersistentVolumes), Delete (default for dynamically provisioned PersistentVolumes), and "
    "Recycle (deprecated). Recycle must be supported by the volume plugin underlying this "
    "PersistentVolume. More info: "
    "https://kubernetes.io/docs/concepts/storage/persistent-volumes#reclaiming"
)
PV_PHASE = (
    "phase indicates if a volume is available, bound to a claim, or released by a claim. "
    "More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#phase"
)
PV_CLAIM = (
    "claimRef is part of a bi-directional binding between PersistentVolume and "
    "PersistentVolumeClaim. Expected to be non-nil when bound. claim.VolumeName is the "
    "authoritative bind between PV and PVC. More info: "
    "https://kubernetes.io/docs/concepts/storage/persistent-volumes#binding"
)
PV_REASON = (
    "reason is a brief CamelCase string that describes any failure and is meant for machine "
    "parsing and tidy display in the CLI."
)
PV_VOLUME_MODE = (
    "volumeMode defines if a volume is intended to be used with a formatted filesystem or to "
    "remain in raw block state. Value of Filesystem is implied when not included in spec."
)
PVC_PHASE = "phase represents the current phase of PersistentVolumeClaim."
PVC_VOLUME = "volumeName is the binding reference to the PersistentVolume backing this claim."
PVC_CAPACITY = "capacity represents the actual resources of the underlying volume."
PVC_ACCESS_MODES = (
    "accessModes contains the actual access modes the volume backing the PVC has. More info: "
    "https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes-1"
)
PVC_VOLUME_MODE = (
    "volumeMode defines what type of volume is required by the claim. Value of Filesystem is "
    "implied when not included in claim spec."
)
DEPLOY_UPDATED = (
    "Total number of non-terminated pods targeted by this deployment that have the desired "
    "template spec."
)
DEPLOY_AVAILABLE = (
    "Total number of available pods (ready for at least minReadySeconds) targeted by this "
    "deployment."
)
DEPLOY_SELECTOR = (
    "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be "
    "the ones affected by this deployment."
)
CM_DATA = (
    "Data contains the configuration data. Each key must consist of alphanumeric characters, "
    "'-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. "
    "The keys stored in Data must not overlap with the keys in the BinaryData field, this is "
    "enforced during validation process."
)
LEASE_HOLDER = (
    "holderIdentity contains the identity of the holder of a current lease. If Coordinated "
    "Leader Election is used, the holder identity must be equal to the elected "
    "LeaseCandidate.metadata.name field."
)
SC_PROVISIONER = "provisioner indicates the type of the provisioner."
SC_RECLAIM = (
    "reclaimPolicy controls the reclaimPolicy for dynamically provisioned PersistentVolumes "
    "of this storage class. Defaults to Delete."
)
SC_BINDING_MODE = (
    "volumeBindingMode indicates how PersistentVolumeClaims should be provisioned and "
    "bound.\n\nWhen unset, VolumeBindingImmediate is used. This field is only honored by "
    "servers that enable the VolumeScheduling feature."
)
SC_EXPANSION = "allowVolumeExpansion shows whether the storage class allow volume expand."
CR_REVISION = "Revision indicates the revision of the state represented by Data."
EPS_ADDRESS_TYPE = (
    "addressType specifies the type of address carried by this EndpointSlice. All addresses "
    "in this slice must be the same type. This field is immutable after creation. The "
    "following address types are currently supported: * IPv4: Represents an IPv4 Address. * "
    "IPv6: Represents an IPv6 Address. * FQDN: Represents a Fully Qualified Domain Name."
)
EPS_PORTS = (
    "ports specifies the list of network ports exposed by each endpoint in this slice. Each "
    "port must have a unique name. When ports is empty, it indicates that there are no "
    "defined ports. When a port is defined with a nil port value, it indicates \"all "
    "ports\". Each slice may include a maximum of 100 ports."
)
EPS_ENDPOINTS = (
    "endpoints is a list of unique endpoints in this slice. Each slice may include a maximum "
    "of 1000 endpoints."
)

# Texts the printers write inline rather than taking from field docs.
POD_READY = "The aggregate readiness state of this pod for accepting traffic."
POD_STATUS = "The aggregate status of the containers in this pod."
POD_RESTARTS = ("The number of times the containers in this pod have been restarted and when "
                "the last container in this pod has restarted.")
TEMPLATE_CONTAINERS = "Names of each container in the template."
TEMPLATE_IMAGES = "Images referenced by each container in the template."
READY_PODS = "Number of the pod with ready state"
NODE_STATUS = "The status of the node"
NODE_ROLES = "The roles of the node"
NAMESPACE_STATUS = "The status of the namespace"
PV_STORAGE_CLASS = "StorageClass of the pv"
PV_VAC = "VolumeAttributesClass of the pv"
PVC_STORAGE_CLASS = "StorageClass of the pvc"
PVC_VAC = "VolumeAttributesClass of the pvc"
CR_CONTROLLER = "Controller of the object"
# fmt: on
